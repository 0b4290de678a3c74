//! Ctrl-C and SIGTERM as flags: the first asks the running command to stop gracefully (finish
//! what is in flight, flush, commit, print a summary); the second asks it to give up waiting.

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);
static ABORT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    if STOP.swap(true, Ordering::SeqCst) {
        ABORT.store(true, Ordering::SeqCst);
    }
}

/// Installs the handlers for SIGINT and SIGTERM. Call once, early.
pub fn install() {
    let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

/// Set by the first Ctrl-C or SIGTERM.
pub fn stop_flag() -> &'static AtomicBool {
    &STOP
}

/// Set by the second Ctrl-C or SIGTERM.
pub fn abort_flag() -> &'static AtomicBool {
    &ABORT
}
