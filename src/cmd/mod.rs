//! One module per subcommand: each turns parsed arguments and settings into library calls and
//! prints what the user sees (data on stdout, progress and summaries on stderr). Progress bars,
//! signals and the async runtime live here, never in the core.

pub mod audit;
pub mod bench;
pub mod bench_compact;
pub mod bench_consume;
pub mod bench_freshness;
pub mod bench_produce_memory;
pub mod bench_query;
pub mod bench_soak;
pub mod broker;
pub mod catalog;
pub mod compact;
pub mod compare;
pub mod consume;
pub mod demo;
pub mod lake;
pub mod produce;
pub mod repl;
pub mod sql;
pub mod status;
pub mod sync;

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::Error;

/// The tokio runtime a command runs its async work on (`workers`: threads, default one per
/// core).
pub fn runtime(workers: Option<usize>) -> Result<tokio::runtime::Runtime, Error> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all()
        .build()
        .map_err(Error::io("starting the async runtime"))
}

/// A progress bar on stderr, hidden when `quiet` or when stderr is not a terminal.
pub fn progress_bar(quiet: bool, len: Option<u64>, template: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// A running query's status as a spinner on stderr (none when `quiet`).
pub fn spinner(quiet: bool) -> Option<Arc<dyn crate::engine::Progress>> {
    (!quiet).then(|| Arc::new(Spinner::default()) as Arc<dyn crate::engine::Progress>)
}

/// Draws [`crate::engine::Progress`] reports: a spinner per query, cleared when it ends.
#[derive(Default)]
struct Spinner {
    bar: Mutex<Option<ProgressBar>>,
}

impl crate::engine::Progress for Spinner {
    fn status(&self, line: &str) {
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bar = bar.get_or_insert_with(|| progress_bar(false, None, "{spinner} {msg}"));
        bar.set_message(line.to_string());
        bar.tick();
    }

    fn done(&self) {
        let mut bar = self
            .bar
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
    }
}
