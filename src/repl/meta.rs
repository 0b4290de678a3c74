//! The REPL's backslash commands: one enum, one parser, one help table.

use crate::engine::EngineKind;
use crate::lake::delta::read::AsOf;
use crate::print::OutputFormat;

/// A backslash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Meta {
    Quit,
    Help,
    /// List tables, or describe one.
    Describe(Option<String>),
    /// Run a .sql file, or a saved query by name.
    Run(String),
    /// List saved queries.
    Queries,
    /// Show or set timings (None toggles).
    Timing(Option<bool>),
    /// Show or set the output format.
    Format(Option<OutputFormat>),
    /// Show or set the engine.
    Engine(Option<EngineKind>),
    /// Show or set the row limit (0: no limit).
    MaxRows(Option<usize>),
    /// Run the last statement on both engines and compare the results.
    Compare,
    /// Read a table version (or the version of a moment) from now on; None: the latest again.
    AsOf(Option<AsOf>),
    /// Re-run the last statement every interval (None: the default) until Ctrl-C.
    Watch(Option<std::time::Duration>),
}

/// The help table: command, arguments, what it does. `\?` prints it; completion uses it.
pub const HELP: &[(&str, &str, &str)] = &[
    ("\\q", "", "quit (Ctrl-D too)"),
    ("\\?", "", "this help"),
    (
        "\\d",
        "[table]",
        "list tables (with the version, files, rows and size read), or the columns of one",
    ),
    (
        "\\as-of",
        "[VERSION|TIME]",
        "read that table version from now on (a number, or RFC 3339 time); no argument: the latest",
    ),
    ("\\queries", "", "list saved queries"),
    (
        "\\run",
        "FILE|NAME",
        "run a .sql file, or a saved query by name",
    ),
    (
        "\\timing",
        "[on|off]",
        "show row counts and timings (toggles without argument)",
    ),
    (
        "\\format",
        "[table|csv|json|ndjson]",
        "show or set the output format",
    ),
    (
        "\\engine",
        "[local|athena|both]",
        "show or switch the engine",
    ),
    (
        "\\compare",
        "",
        "run the last statement on both engines and show the differences",
    ),
    (
        "\\maxrows",
        "[N]",
        "show or set the most rows printed (0: all)",
    ),
    (
        "\\watch",
        "[SECONDS]",
        "re-run the last statement every SECONDS (default 2; 0.5 and 500ms too), showing the \
         table version and the rows changed; Ctrl-C stops (local engine)",
    ),
];

impl Meta {
    /// Parses a line that starts with `\`. Err holds a message for the user.
    pub fn parse(line: &str) -> Result<Meta, String> {
        let line = line.trim().trim_end_matches(';').trim();
        let mut words = line.split_whitespace();
        let cmd = words.next().unwrap_or("");
        let arg = words.next();
        if let Some(extra) = words.next() {
            return Err(format!(
                "{cmd}: unexpected argument {extra:?} (\\? for help)"
            ));
        }
        let on_off = |a: &str| match a.to_ascii_lowercase().as_str() {
            "on" | "true" | "1" => Ok(true),
            "off" | "false" | "0" => Ok(false),
            _ => Err(format!("\\timing: expected on or off, not {a:?}")),
        };
        Ok(match cmd {
            "\\q" | "\\quit" | "\\exit" => Meta::Quit,
            "\\?" | "\\h" | "\\help" => Meta::Help,
            "\\d" => Meta::Describe(arg.map(str::to_string)),
            "\\queries" => Meta::Queries,
            "\\compare" => Meta::Compare,
            "\\as-of" | "\\asof" => Meta::AsOf(
                arg.map(|a| a.parse::<AsOf>().map_err(|e| format!("\\as-of: {e}")))
                    .transpose()?,
            ),
            "\\run" | "\\i" => Meta::Run(
                arg.ok_or("\\run: which file or saved query? (\\queries lists them)")?
                    .to_string(),
            ),
            "\\timing" => Meta::Timing(arg.map(on_off).transpose()?),
            "\\format" => Meta::Format(arg.map(|a| a.parse::<OutputFormat>()).transpose()?),
            "\\engine" => Meta::Engine(
                arg.map(|a| {
                    <EngineKind as clap::ValueEnum>::from_str(a, true)
                        .map_err(|_| format!("\\engine: expected local, athena or both, not {a:?}"))
                })
                .transpose()?,
            ),
            "\\maxrows" => Meta::MaxRows(
                arg.map(|a| {
                    a.parse::<usize>()
                        .map_err(|_| format!("\\maxrows: expected a number, not {a:?}"))
                })
                .transpose()?,
            ),
            "\\watch" => Meta::Watch(
                arg.map(|a| crate::cli::parse_interval(a).map_err(|e| format!("\\watch: {e}")))
                    .transpose()?,
            ),
            other => return Err(format!("unknown command {other} (\\? for help)")),
        })
    }
}

/// The help text.
pub fn help_text() -> String {
    let mut out = String::from("SQL statements end with ; and may span lines. Commands:\n");
    for (cmd, args, what) in HELP {
        out.push_str(&format!("  {:<34} {what}\n", format!("{cmd} {args}")));
    }
    out.push_str(
        "Ctrl-C cancels the running statement (or the input line, or a \\watch); Ctrl-D quits.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_and_rejects_bad_ones() {
        assert_eq!(Meta::parse("\\q"), Ok(Meta::Quit));
        assert_eq!(
            Meta::parse(" \\d ticks ;"),
            Ok(Meta::Describe(Some("ticks".into())))
        );
        assert_eq!(
            Meta::parse("\\run monthly_vwap"),
            Ok(Meta::Run("monthly_vwap".into()))
        );
        assert_eq!(Meta::parse("\\timing off"), Ok(Meta::Timing(Some(false))));
        assert_eq!(
            Meta::parse("\\format CSV"),
            Ok(Meta::Format(Some(OutputFormat::Csv)))
        );
        assert_eq!(
            Meta::parse("\\engine athena"),
            Ok(Meta::Engine(Some(EngineKind::Athena)))
        );
        assert_eq!(Meta::parse("\\maxrows 5"), Ok(Meta::MaxRows(Some(5))));
        assert_eq!(Meta::parse("\\compare;"), Ok(Meta::Compare));
        assert_eq!(
            Meta::parse("\\as-of 3"),
            Ok(Meta::AsOf(Some(AsOf::Version(3))))
        );
        assert!(matches!(
            Meta::parse("\\as-of 2026-01-15T09:30:00Z"),
            Ok(Meta::AsOf(Some(AsOf::Time(_))))
        ));
        assert_eq!(Meta::parse("\\as-of"), Ok(Meta::AsOf(None)));
        assert_eq!(Meta::parse("\\watch"), Ok(Meta::Watch(None)));
        assert_eq!(
            Meta::parse("\\watch 0.5;"),
            Ok(Meta::Watch(Some(std::time::Duration::from_millis(500))))
        );
        assert!(Meta::parse("\\watch 0").is_err());
        assert!(Meta::parse("\\as-of yesterday").is_err());
        assert!(Meta::parse("\\run").is_err());
        assert!(Meta::parse("\\format xml").is_err());
        assert!(Meta::parse("\\nope").is_err());
        assert!(Meta::parse("\\d a b").is_err());
        // Every command of the help table parses.
        for (cmd, _, _) in HELP {
            let line = if *cmd == "\\run" {
                "\\run x".to_string()
            } else {
                cmd.to_string()
            };
            assert!(Meta::parse(&line).is_ok(), "{cmd}");
        }
    }
}
