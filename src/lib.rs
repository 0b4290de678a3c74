//! stocklake: stock ticks from CSV files through Kafka into a Parquet lake on a local folder or
//! S3, queried with the same SQL by an embedded DataFusion engine or by Amazon Athena.
//!
//! Floors, top to bottom (no module imports from a floor above its own; checked by
//! `tests/integration/layers.rs`):
//! - `cmd`: one file per subcommand; progress bars, signals and the runtime live here.
//! - `repl`: the interactive shell.
//! - `cli` (clap), `settings` (flags > environment > file > defaults, the only home of every
//!   default), `script` (statements run for `sql`, `repl` and `demo`), `error` (the command's
//!   error and exit status).
//! - the core, which knows no command line: `source`, `kafka`, `lake`, `engine`, `compare`,
//!   `catalog`, `sync`, `print`.
//! - `aws`, `signal`, `metrics` (Prometheus instruments and their endpoint); then `report` (an error and its causes, each once), `tick` (the record) and `memory` (malloc's
//!   arenas and trimming).

pub mod aws;
pub mod catalog;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod engine;
pub mod error;
pub mod kafka;
pub mod lake;
pub mod memory;
pub mod metrics;
pub mod print;
pub mod repl;
pub mod report;
pub mod script;
pub mod settings;
pub mod signal;
pub mod source;
pub mod sync;
pub mod tick;

pub use error::Error;
