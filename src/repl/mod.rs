//! The interactive shell: a rustyline loop reading statements that end at `;`, backslash
//! commands ([`meta::Meta`]), file history, completion. A failing statement prints its error and
//! the session goes on; Ctrl-C cancels the running statement, not the session.

pub mod helper;
pub mod meta;

use std::io::Write;
use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

use crate::Error;
use crate::cmd::sql::{ShowOptions, SqlSource, run_source, runtime};
use crate::engine::queries::{self, SavedQuery};
use crate::engine::{Engine, EngineKind};
use crate::print::OutputFormat;
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
}

/// `~/.stocklake_history`.
pub fn default_history_path() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".stocklake_history"))
}

struct Session {
    rt: tokio::runtime::Runtime,
    engine: Engine,
    opts: ReplOptions,
    /// The last SQL statement run, for `\compare`.
    last_sql: Option<String>,
}

enum Flow {
    Continue,
    Quit,
}

impl Session {
    fn show(&self) -> ShowOptions {
        ShowOptions {
            format: self.opts.format,
            max_rows: self.opts.max_rows,
            timing: self.opts.timing,
        }
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
        crate::signal::reset();
        let source = SqlSource {
            origin: origin.to_string(),
            text: text.to_string(),
        };
        let show = self.show();
        let tol = self.opts.tolerance;
        let result = self.rt.block_on(async {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            if let Engine::Both(local, athena) = &self.engine {
                for stmt in statements::split(&source.text) {
                    let what = format!("{origin} statement {}", stmt.index);
                    crate::cmd::sql::compare_statement(
                        local,
                        athena,
                        &what,
                        &stmt.text,
                        tol,
                        show.format,
                        &mut out,
                    )
                    .await?;
                }
                return Ok(());
            }
            run_source(&self.engine, &source, show, &mut out).await
        });
        crate::signal::reset();
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
            Meta::Engine(kind) => {
                if let Some(kind) = kind
                    && kind != self.engine.kind()
                {
                    let engine = self.rt.block_on(Engine::connect_with(
                        kind,
                        &self.opts.lake,
                        self.opts.athena.clone(),
                    ))?;
                    self.engine = engine;
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
            both = self.rt.block_on(Engine::connect_with(
                EngineKind::Both,
                &self.opts.lake,
                self.opts.athena.clone(),
            ))?;
            &both
        };
        let Engine::Both(local, athena) = engine else {
            return Err(Error::Other("\\compare: no second engine".into()));
        };
        crate::signal::reset();
        let (tol, format) = (self.opts.tolerance, self.opts.format);
        let result = self.rt.block_on(async {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            crate::cmd::sql::compare_statement(
                local,
                athena,
                "last statement",
                &sql,
                tol,
                format,
                &mut out,
            )
            .await
        });
        crate::signal::reset();
        result.map(|_| ())
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
        match table {
            None => {
                for (db, t) in local.tables() {
                    println!(
                        "{db}.{t}  (lake {}, partitioned by {})",
                        local.lake(),
                        partitions.join(", ")
                    );
                }
            }
            Some(name) => {
                let schema = self.rt.block_on(local.table_schema(name))?;
                println!("{:<16} {:<28} {:<9} note", "column", "type", "nullable");
                for f in schema.fields() {
                    let note = if partitions.contains(&f.name().as_str()) {
                        "partition"
                    } else {
                        ""
                    };
                    let ty = f.data_type().to_string();
                    println!("{:<16} {ty:<28} {:<9} {note}", f.name(), f.is_nullable());
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
                eprintln!("error: {e}");
                Flow::Continue
            }
        }
    }
}

/// Runs the shell until `\q` or end of input.
pub fn run(opts: ReplOptions) -> Result<(), Error> {
    let rt = runtime()?;
    let engine = rt.block_on(Engine::connect_with(
        opts.engine,
        &opts.lake,
        opts.athena.clone(),
    ))?;
    let mut session = Session {
        rt,
        engine,
        opts,
        last_sql: None,
    };
    let config = Config::builder().auto_add_history(false).build();
    let mut editor: Editor<ReplHelper, FileHistory> =
        Editor::with_config(config).map_err(|e| Error::Other(format!("terminal: {e}")))?;
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
        crate::signal::reset();
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
            Err(e) => return Err(Error::Other(format!("reading input: {e}"))),
        }
    }
    if let Some(h) = &session.opts.history
        && let Err(e) = editor.save_history(h)
    {
        tracing::warn!("could not save history to {}: {e}", h.display());
    }
    Ok(())
}

use crate::engine::statements;
