//! One module per subcommand: each turns parsed arguments and settings into library calls and
//! prints what the user sees (data on stdout, progress and summaries on stderr).

pub mod bench;
pub mod bench_consume;
pub mod bench_query;
pub mod broker;
pub mod catalog;
pub mod compare;
pub mod consume;
pub mod demo;
pub mod produce;
pub mod repl;
pub mod sql;
pub mod sync;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

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
