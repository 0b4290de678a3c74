//! Running programs under test: the `stocklake` binary and the test venv's Python, each in a
//! fresh temporary directory and without the developer's `STOCKLAKE_*` variables or `RUST_LOG`,
//! so that no `./stocklake.toml`, `./queries` or exported setting of the shell leaks in.

use std::ffi::OsStr;
use std::io::Write;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use tempfile::TempDir;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_stocklake");

/// `stocklake <args>`, in a clean environment (see [`Cmd::new`]).
pub fn cmd<S: AsRef<OsStr>>(args: &[S]) -> Cmd {
    Cmd::new(BIN).args(args)
}

/// The test venv (scripts/python-env.sh makes it): `$STOCKLAKE_VENV`, else `./.venv`.
pub fn venv() -> PathBuf {
    match std::env::var_os("STOCKLAKE_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => super::repo().join(".venv"),
    }
}

/// The test venv's `python <args>`, in a clean environment; a missing venv fails the test.
pub fn python<S: AsRef<OsStr>>(args: &[S]) -> Cmd {
    let py = venv().join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: run `bash scripts/python-env.sh` (or set STOCKLAKE_VENV to a venv made \
         from requirements.txt) before `cargo test`",
        py.display()
    );
    Cmd::new(py).args(args)
}

/// A command builder around [`std::process::Command`] with the suite's defaults.
pub struct Cmd {
    command: Command,
    /// The default working directory, removed once the process is done with it.
    dir: Option<TempDir>,
}

impl Cmd {
    /// `program` to run in a new empty directory, with every `STOCKLAKE_*` variable and
    /// `RUST_LOG` removed from the inherited environment (a test sets what it needs).
    pub fn new(program: impl AsRef<OsStr>) -> Cmd {
        let dir = tempfile::tempdir().expect("a temporary working directory");
        let mut command = Command::new(program);
        command.current_dir(dir.path());
        for (name, _) in std::env::vars_os() {
            if name.as_encoded_bytes().starts_with(b"STOCKLAKE_") {
                command.env_remove(name);
            }
        }
        command.env_remove("RUST_LOG");
        Cmd {
            command,
            dir: Some(dir),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.command.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Cmd
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.command.envs(vars);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Cmd {
        self.command.env_remove(key);
        self
    }

    /// Runs in `dir` instead of a fresh empty directory: for tests of what the working
    /// directory holds (`./.stocklake/athena`, `./queries`, `./lake`).
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.command.current_dir(dir);
        self.dir = None;
        self
    }

    /// Runs with every file the program writes limited to `bytes` (`RLIMIT_FSIZE`, soft and
    /// hard, in the child only) and `SIGXFSZ` ignored, so that a write past the limit fails with
    /// `EFBIG` ("File too large") as a write on a full disk fails, instead of killing the
    /// program. Needs no privilege, unlike mounting a small file system.
    pub fn file_size_limit(mut self, bytes: u64) -> Cmd {
        use std::os::unix::process::CommandExt;
        let limit = libc::rlimit {
            rlim_cur: bytes as libc::rlim_t,
            rlim_max: bytes as libc::rlim_t,
        };
        // SAFETY: between fork and exec the closure only calls setrlimit and signal, which are
        // async-signal-safe, and allocates nothing.
        unsafe {
            self.command.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // An ignored signal stays ignored across exec.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        self
    }

    pub fn stdin(mut self, cfg: impl Into<Stdio>) -> Cmd {
        self.command.stdin(cfg);
        self
    }

    pub fn stdout(mut self, cfg: impl Into<Stdio>) -> Cmd {
        self.command.stdout(cfg);
        self
    }

    pub fn stderr(mut self, cfg: impl Into<Stdio>) -> Cmd {
        self.command.stderr(cfg);
        self
    }

    /// Runs to the end and returns what it printed; a program that cannot start fails the test.
    pub fn output(mut self) -> Output {
        let out = self.command.output();
        out.unwrap_or_else(|e| panic!("{:?} does not start: {e}", self.command.get_program()))
    }

    /// [`Cmd::output`], failing the test (with what it printed) unless the program succeeds.
    pub fn output_ok(self) -> Output {
        let program = self.command.get_program().to_owned();
        let args: Vec<_> = self.command.get_args().map(OsStr::to_owned).collect();
        let out = self.output();
        assert!(
            out.status.success(),
            "{program:?} {args:?}: {}\n{}{}",
            out.status,
            super::stdout(&out),
            super::stderr(&out)
        );
        out
    }

    /// Runs with `input` on stdin (then closed) and returns what it printed.
    pub fn output_with_stdin(self, input: &[u8]) -> Output {
        let mut child = self
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(input)
            .expect("writing to the child's stdin");
        drop(stdin);
        child.wait_with_output()
    }

    /// Starts the program; it is killed if the [`Running`] handle is dropped before it ends.
    pub fn spawn(mut self) -> Running {
        let child = self.command.spawn();
        let child = child
            .unwrap_or_else(|e| panic!("{:?} does not start: {e}", self.command.get_program()));
        Running {
            child: Some(child),
            _dir: self.dir,
        }
    }
}

/// A started program (a [`Child`] through `Deref`), killed on drop unless it was waited for.
pub struct Running {
    child: Option<Child>,
    _dir: Option<TempDir>,
}

impl Running {
    /// Closes stdin, waits for the end and returns what it printed.
    pub fn wait_with_output(mut self) -> Output {
        let child = self.child.take().expect("a running child");
        child.wait_with_output().expect("waiting for the child")
    }

    /// Sends `signal` (SIGTERM, SIGINT) to the process.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: signalling our own child process, which we have not reaped yet.
        unsafe { libc::kill(self.id() as libc::pid_t, signal) };
    }
}

impl Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        self.child.as_ref().expect("a running child")
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("a running child")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(None) = child.try_wait()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
