//! The interactive shell: a rustyline loop reading statements that end at `;`, backslash
//! commands ([`meta::Meta`]), file history, completion. A failing statement prints its error and
//! the session goes on; Ctrl-C cancels the running statement, not the session.

pub mod helper;
pub mod meta;
pub mod watch;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use crate::Error;
use crate::engine::queries::{self, SavedQuery};
use crate::engine::statements;
use crate::engine::{Engine, EngineKind, Progress};
use crate::print::OutputFormat;
use crate::script::{self, Show};
use helper::{Names, ReplHelper};
use meta::Meta;

/// Everything the shell starts with.
#[derive(Debug, Clone)]
pub struct ReplOptions {
    pub lake: String,
    pub engine: EngineKind,
    pub format: OutputFormat,
    pub max_rows: Option<usize>,
    pub timing: bool,
    /// Folder of saved queries; None: the built-in ones.
    pub queries_dir: Option<PathBuf>,
    /// History file; None: no history kept.
    pub history: Option<PathBuf>,
    /// Where Athena runs statements (`\engine athena|both`, `\compare`).
    pub athena: crate::engine::athena::AthenaSettings,
    /// Float tolerance of `\compare` and the `both` engine.
    pub tolerance: crate::compare::Tolerance,
    /// The table version the local engine reads (`--as-of`, `\as-of`); None: the latest.
    pub as_of: Option<crate::lake::delta::read::AsOf>,
}

struct Session<'a> {
    rt: &'a tokio::runtime::Runtime,
    engine: Engine,
    opts: ReplOptions,
    /// Where Athena reports a running query.
    progress: Option<Arc<dyn Progress>>,
    /// Set by Ctrl-C: stops the running statement; cleared before each input.
    cancel: &'a AtomicBool,
    /// The last SQL statement run, for `\compare` and `\watch`.
    last_sql: Option<String>,
}

enum Flow {
    Continue,
    Quit,
}

impl Session<'_> {
    fn show(&self) -> Show<'_> {
        Show {
            format: self.opts.format,
            max_rows: self.opts.max_rows,
            timing: self.opts.timing,
            tolerance: self.opts.tolerance,
            cancel: self.cancel,
        }
    }

    /// Opens the engine `kind`, its local engine pinned as the session is.
    fn connect(&self, kind: EngineKind) -> Result<Engine, Error> {
        let engine = self.rt.block_on(Engine::connect(
            kind,
            &self.opts.lake,
            self.opts.athena.clone(),
            self.progress.clone(),
        ))?;
        if let (Engine::Local(local), Some(_)) = (&engine, self.opts.as_of) {
            self.rt.block_on(local.set_as_of(self.opts.as_of))?;
        }
        Ok(engine)
    }

    fn saved(&self) -> Result<Vec<SavedQuery>, Error> {
        Ok(queries::load(self.opts.queries_dir.as_deref())?)
    }

    fn names(&self) -> Names {
        let mut names = Names::default();
        if let Some(local) = self.engine.local() {
            for (db, t) in local.tables() {
                names.tables.push(format!("{db}.{t}"));
                names.tables.push(t);
            }
            names.columns = local
                .ticks_schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
        }
        names.saved_queries = self
            .saved()
            .map(|q| q.into_iter().map(|q| q.name).collect())
            .unwrap_or_default();
        names
    }

    /// Runs SQL text; errors are the caller's to print.
    fn run_sql(&mut self, origin: &str, text: &str) -> Result<(), Error> {
        if let Some(last) = statements::split(text).pop() {
            self.last_sql = Some(last.text);
        }
        self.cancel.store(false, Ordering::SeqCst);
        let show = self.show();
        let result = self.rt.block_on(async {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            script::run_text(&self.engine, origin, text, show, &mut out).await
        });
        self.cancel.store(false, Ordering::SeqCst);
        result
    }

    fn meta(&mut self, m: Meta) -> Result<Flow, Error> {
        match m {
            Meta::Quit => return Ok(Flow::Quit),
            Meta::Help => print!("{}", meta::help_text()),
            Meta::Describe(table) => self.describe(table.as_deref())?,
            Meta::Queries => {
                for q in self.saved()? {
                    println!("{:<18} {}", q.name, q.description);
                }
            }
            Meta::Run(what) => {
                let saved = self.saved()?;
                let q = match queries::find(&saved, &what) {
                    Some(q) => q.clone(),
                    None => SavedQuery::from_file(std::path::Path::new(&what)).map_err(|e| {
                        Error::Usage(format!(
                            "{e} (not a saved query either; \\queries lists them)"
                        ))
                    })?,
                };
                self.run_sql(&q.origin, &q.sql)?;
            }
            Meta::Timing(v) => {
                self.opts.timing = v.unwrap_or(!self.opts.timing);
                println!("timing {}", if self.opts.timing { "on" } else { "off" });
            }
            Meta::Format(f) => {
                if let Some(f) = f {
                    self.opts.format = f;
                }
                println!("format {}", self.opts.format);
            }
            Meta::MaxRows(n) => {
                if let Some(n) = n {
                    self.opts.max_rows = (n > 0).then_some(n);
                }
                match self.opts.max_rows {
                    Some(n) => println!("maxrows {n}"),
                    None => println!("maxrows 0 (all rows)"),
                }
            }
            Meta::Compare => self.compare_last()?,
            Meta::Watch(every) => {
                self.watch_last(every.unwrap_or(crate::settings::defaults::WATCH_INTERVAL))?
            }
            Meta::AsOf(as_of) => {
                let version = self.rt.block_on(self.engine.set_as_of(as_of))?;
                self.opts.as_of = as_of;
                match (as_of, version) {
                    (Some(a), Some(v)) => println!("as of {a}: table version {v}"),
                    _ => println!("as of now: each statement reads the latest committed version"),
                }
            }
            Meta::Engine(kind) => {
                if let Some(kind) = kind
                    && kind != self.engine.kind()
                {
                    self.engine = self.connect(kind)?;
                    self.opts.engine = kind;
                }
                println!("engine {}", self.engine.kind());
            }
        }
        Ok(Flow::Continue)
    }

    /// `\compare`: the last statement on both engines (opened for the occasion when the
    /// session runs on one).
    fn compare_last(&mut self) -> Result<(), Error> {
        let sql = self.last_sql.clone().ok_or_else(|| {
            Error::Usage("\\compare: no statement yet (run one, then \\compare)".into())
        })?;
        let both;
        let engine = if let Engine::Both(..) = self.engine {
            &self.engine
        } else {
            both = self.connect(EngineKind::Both)?;
            &both
        };
        let Engine::Both(local, athena) = engine else {
            unreachable!("connect(Both) opens both engines");
        };
        self.cancel.store(false, Ordering::SeqCst);
        let show = self.show();
        let result = self.rt.block_on(async {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            script::compare_statement(local, athena, "last statement", &sql, show, &mut out).await
        });
        self.cancel.store(false, Ordering::SeqCst);
        result.map(|_| ())
    }

    /// `\watch`: the last statement every `interval` until Ctrl-C; the session goes on.
    fn watch_last(&mut self, interval: std::time::Duration) -> Result<(), Error> {
        let stmt = self
            .last_sql
            .as_deref()
            .and_then(|sql| statements::split(sql).pop())
            .ok_or_else(|| {
                Error::Usage(
                    "\\watch: no statement to re-run yet (run one first, e.g. \
                     SELECT count(*) FROM ticks; then \\watch 2)"
                        .into(),
                )
            })?;
        let opts = watch::WatchOptions {
            interval,
            in_place: std::io::stdout().is_terminal(),
        };
        self.cancel.store(false, Ordering::SeqCst);
        let show = self.show();
        let result = self.rt.block_on(async {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            watch::watch(&self.engine, "last statement", &stmt, opts, show, &mut out).await
        });
        self.cancel.store(false, Ordering::SeqCst);
        let refreshes = result?;
        if self.opts.timing {
            eprintln!(
                "(watch stopped after {refreshes} refresh{})",
                if refreshes == 1 { "" } else { "es" }
            );
        }
        Ok(())
    }

    fn describe(&self, table: Option<&str>) -> Result<(), Error> {
        let Some(local) = self.engine.local() else {
            return Err(Error::Usage("\\d needs the local engine".into()));
        };
        let partitions: Vec<&str> = local
            .layout()
            .partition_by
            .iter()
            .map(|k| k.column())
            .collect();
        // The version the next statement reads.
        let state = self.rt.block_on(local.lake_state_now())?;
        match table {
            None => {
                for (db, t) in local.tables() {
                    if t == crate::engine::local::TABLE {
                        println!(
                            "{db}.{t}  (lake {}, partitioned by {})\n  {}",
                            local.lake(),
                            partitions.join(", "),
                            state.summary()
                        );
                    } else {
                        println!("{db}.{t}");
                    }
                }
            }
            Some(name) => {
                let schema = self.rt.block_on(local.table_schema(name))?;
                let ticks = name.rsplit('.').next() == Some(crate::engine::local::TABLE);
                println!("{:<16} {:<28} {:<9} note", "column", "type", "nullable");
                for f in schema.fields() {
                    let note = if ticks && partitions.contains(&f.name().as_str()) {
                        "partition"
                    } else {
                        ""
                    };
                    let ty = f.data_type().to_string();
                    println!("{:<16} {ty:<28} {:<9} {note}", f.name(), f.is_nullable());
                }
                if ticks {
                    println!("{}", state.describe());
                }
            }
        }
        Ok(())
    }

    /// Handles one input (a statement or several, or a backslash command).
    fn handle(&mut self, input: &str) -> Flow {
        let trimmed = input.trim();
        let result = if trimmed.starts_with('\\') {
            match Meta::parse(trimmed) {
                Ok(m) => self.meta(m),
                Err(msg) => Err(Error::Usage(msg)),
            }
        } else {
            self.run_sql("<input>", input).map(|()| Flow::Continue)
        };
        std::io::stdout().flush().ok();
        match result {
            Ok(flow) => flow,
            Err(e) => {
                eprintln!("error: {}", crate::report::chain(&e));
                Flow::Continue
            }
        }
    }
}

/// Runs the shell until `\q` or end of input. Setting `cancel` (Ctrl-C) stops the running
/// statement, not the session.
pub fn run(
    opts: ReplOptions,
    rt: &tokio::runtime::Runtime,
    progress: Option<Arc<dyn Progress>>,
    cancel: &AtomicBool,
) -> Result<(), Error> {
    let engine = rt.block_on(Engine::connect(
        opts.engine,
        &opts.lake,
        opts.athena.clone(),
        progress.clone(),
    ))?;
    rt.block_on(engine.set_as_of(opts.as_of))?;
    let mut session = Session {
        rt,
        engine,
        opts,
        progress,
        cancel,
        last_sql: None,
    };
    let config = Config::builder().auto_add_history(false).build();
    let mut editor: Editor<ReplHelper, FileHistory> =
        Editor::with_config(config).map_err(|e| Error::Io {
            what: "opening the terminal".into(),
            source: readline_io(e),
        })?;
    editor.set_helper(Some(ReplHelper {
        names: session.names(),
    }));
    if let Some(h) = &session.opts.history {
        let _ = editor.load_history(h); // a missing history file is fine
    }
    if session.opts.timing {
        eprintln!(
            "stocklake repl on {} ({} engine). \\? for help, \\q to quit.",
            session.opts.lake,
            session.engine.kind()
        );
    }
    loop {
        cancel.store(false, Ordering::SeqCst);
        match editor.readline("stocklake> ") {
            Ok(input) => {
                if !statements::has_code(&input) && !input.trim_start().starts_with('\\') {
                    continue;
                }
                let _ = editor.add_history_entry(input.trim());
                if let Flow::Quit = session.handle(&input) {
                    break;
                }
                if let Some(h) = editor.helper_mut() {
                    h.names = session.names();
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                return Err(Error::Io {
                    what: "reading input".into(),
                    source: readline_io(e),
                });
            }
        }
    }
    if let Some(h) = &session.opts.history
        && let Err(e) = editor.save_history(h)
    {
        tracing::warn!(
            "could not save history to {}: {}",
            h.display(),
            crate::report::chain(&e)
        );
    }
    Ok(())
}

/// rustyline's error as the I/O error it wraps (or one that says it).
fn readline_io(e: ReadlineError) -> std::io::Error {
    match e {
        ReadlineError::Io(io) => io,
        other => std::io::Error::other(other.to_string()),
    }
}
