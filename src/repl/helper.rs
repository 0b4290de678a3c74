//! rustyline helper: statements are complete at `;` (so input spans lines until then), and Tab
//! completes SQL keywords, table and column names, backslash commands and saved query names.

use std::borrow::Cow;

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

use crate::engine::statements;

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP",
    "BY",
    "ORDER",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "BETWEEN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "ON",
    "USING",
    "UNION",
    "ALL",
    "DISTINCT",
    "WITH",
    "OVER",
    "PARTITION",
    "ROWS",
    "RANGE",
    "PRECEDING",
    "FOLLOWING",
    "UNBOUNDED",
    "CURRENT",
    "ROW",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "CAST",
    "EXTRACT",
    "DATE",
    "TIMESTAMP",
    "DOUBLE",
    "BIGINT",
    "INTEGER",
    "VARCHAR",
    "TRUE",
    "FALSE",
    "EXPLAIN",
    "DESCRIBE",
    "SHOW",
    "TABLES",
    "COLUMNS",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "STDDEV_SAMP",
    "LAG",
    "LEAD",
    "ROW_NUMBER",
    "RANK",
    "DENSE_RANK",
    "FIRST_VALUE",
    "LAST_VALUE",
    "DATE_TRUNC",
    "COALESCE",
    "ABS",
    "SQRT",
    "ROUND",
];

/// What completion can offer besides keywords.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// `stocklake.ticks`, `ticks`, …
    pub tables: Vec<String>,
    pub columns: Vec<String>,
    pub saved_queries: Vec<String>,
}

pub struct ReplHelper {
    pub names: Names,
}

/// Candidates for the word that ends at `pos`: (start of the word, replacements).
pub fn complete(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let head = &line[..pos];
    let start = head
        .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.' || c == '\\'))
        .map_or(0, |i| {
            i + head[i..].chars().next().map_or(1, char::len_utf8)
        });
    let word = &head[start..];
    let trimmed = head.trim_start();
    let mut out: Vec<String> = Vec::new();
    if trimmed.starts_with('\\') {
        if start == head.len() - trimmed.len() {
            out.extend(
                super::meta::HELP
                    .iter()
                    .map(|(c, _, _)| c.to_string())
                    .filter(|c| c.starts_with(word)),
            );
        } else if trimmed.starts_with("\\run ") {
            out.extend(
                names
                    .saved_queries
                    .iter()
                    .filter(|q| q.starts_with(word))
                    .cloned(),
            );
        } else if trimmed.starts_with("\\d ") {
            out.extend(names.tables.iter().filter(|t| t.starts_with(word)).cloned());
        }
        return (start, out);
    }
    if word.is_empty() {
        return (start, out);
    }
    let lower = word.to_ascii_lowercase();
    let upper_case = word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase);
    for t in names.tables.iter().chain(&names.columns) {
        if t.starts_with(&lower) && !out.contains(t) {
            out.push(t.clone());
        }
    }
    for k in KEYWORDS {
        if k.to_ascii_lowercase().starts_with(&lower) {
            let k = if upper_case {
                k.to_string()
            } else {
                k.to_ascii_lowercase()
            };
            if !out.contains(&k) {
                out.push(k);
            }
        }
    }
    (start, out)
}

impl Completer for ReplHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(complete(line, pos, &self.names))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        let input = ctx.input();
        if input.trim_start().starts_with('\\') || statements::is_complete(input) {
            Ok(ValidationResult::Valid(None))
        } else {
            Ok(ValidationResult::Incomplete)
        }
    }
}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Highlighter for ReplHelper {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Helper for ReplHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names {
            tables: vec!["stocklake.ticks".into(), "ticks".into()],
            columns: vec!["symbol".into(), "trade_date".into(), "close".into()],
            saved_queries: vec!["monthly_vwap".into(), "max_drawdown".into()],
        }
    }

    #[test]
    fn completes_keywords_tables_columns_commands_and_queries() {
        let n = names();
        assert_eq!(complete("SEL", 3, &n), (0, vec!["SELECT".to_string()]));
        let (start, c) = complete("select sym", 10, &n);
        assert_eq!((start, c), (7, vec!["symbol".to_string()]));
        let (_, c) = complete("select * from stock", 19, &n);
        assert_eq!(c, vec!["stocklake.ticks".to_string()]);
        let (_, c) = complete("select tr", 9, &n);
        assert!(
            c.contains(&"trade_date".to_string()) && c.contains(&"true".to_string()),
            "{c:?}"
        );
        let (_, c) = complete("\\ti", 3, &n);
        assert_eq!(c, vec!["\\timing".to_string()]);
        let (start, c) = complete("\\run m", 6, &n);
        assert_eq!((start, c.len()), (5, 2));
    }
}
