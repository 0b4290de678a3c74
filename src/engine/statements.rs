//! Splitting SQL text into statements at `;`, outside quotes and comments, keeping the line each
//! statement starts on (errors name it). Also tells the REPL whether input is a whole statement.
//! Reads SQL through [`super::lexer`].

use super::lexer;

/// One statement of a larger text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement without its `;`.
    pub text: String,
    /// 1-based line of the text where the statement starts (its first token).
    pub line: usize,
    /// 1-based position among the statements of the text.
    pub index: usize,
}

impl Statement {
    /// The first line of the statement, shortened, for error messages.
    pub fn snippet(&self) -> String {
        let first = self
            .text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("--"))
            .unwrap_or("");
        if first.chars().count() > 60 {
            let cut: String = first.chars().take(57).collect();
            format!("{cut}...")
        } else {
            first.to_string()
        }
    }
}

/// Splits `text` into its non-empty statements.
pub fn split(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut push = |start: usize, end: usize| {
        let piece = &text[start..end];
        let lead = piece.len() - piece.trim_start().len();
        out.push(Statement {
            text: piece.trim().to_string(),
            line: text[..start + lead].matches('\n').count() + 1,
            index: out.len() + 1,
        });
    };
    let (mut start, mut code) = (0, false);
    for t in lexer::tokens(text) {
        if t.is_punct(';') {
            if code {
                push(start, t.start);
            }
            (start, code) = (t.end(), false);
        } else if !t.is_trivia() {
            code = true;
        }
    }
    if code {
        push(start, text.len());
    }
    out
}

/// Whether `text` holds anything but blanks and comments.
pub fn has_code(text: &str) -> bool {
    lexer::tokens(text).any(|t| !t.is_trivia())
}

/// Whether `text` is ready to run: every statement ended with `;` (or there is no code at all),
/// and no quote or block comment is left open.
pub fn is_complete(text: &str) -> bool {
    let mut pending = false;
    for t in lexer::tokens(text) {
        if t.unterminated {
            return false;
        }
        if t.is_punct(';') {
            pending = false;
        } else if !t.is_trivia() {
            pending = true;
        }
    }
    !pending
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_and_comments_with_lines() {
        let text = "-- header; not a statement\nSELECT 'a;b' AS \"x;y\";\n\n/* ; */ SELECT\n 2 -- ;\n;\n  ";
        let st = split(text);
        assert_eq!(st.len(), 2, "{st:?}");
        assert_eq!(st[0].line, 1);
        assert!(st[0].text.ends_with("AS \"x;y\""), "{}", st[0].text);
        assert_eq!(st[1].line, 4);
        assert_eq!(st[1].index, 2);
        assert_eq!(st[1].snippet(), "/* ; */ SELECT");
        assert_eq!(split("SELECT 1")[0].text, "SELECT 1");
        assert!(split("  -- only a comment\n").is_empty());
    }

    #[test]
    fn completeness_follows_the_last_semicolon() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(is_complete(""));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("SELECT ';"));
        assert!(!is_complete("SELECT 1; SELECT"));
        assert!(!is_complete("SELECT /* ; */"));
        assert!(is_complete("SELECT 'it''s';"));
    }

    #[test]
    fn blanks_comments_and_semicolons() {
        assert!(has_code(";"));
        assert!(has_code("'"));
        assert!(!has_code(" /* x; */ -- y\n\u{a0}"));
        assert!(split(";;\n; -- c\n;").is_empty());
        let st = split("SELECT 1;\n\u{a0}\n;  SELECT 'a;\n");
        assert_eq!(st.len(), 2, "{st:?}");
        assert_eq!((st[1].text.as_str(), st[1].line), ("SELECT 'a;", 3));
        assert!(!is_complete("SELECT \"x"));
        assert!(is_complete("SELECT 1; -- it's"));
    }
}

/// Property tests (cases: `STOCKLAKE_FUZZ_CASES`, default 256).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    /// SQL-ish text: words, quotes of both kinds, comments of both kinds, semicolons, breaks.
    fn sqlish() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("SELECT 1".to_string()),
                Just(";".to_string()),
                Just("'".to_string()),
                Just("\"".to_string()),
                Just("--".to_string()),
                Just("/*".to_string()),
                Just("*/".to_string()),
                Just("\n".to_string()),
                Just("''".to_string()),
                "\\PC{0,3}",
            ],
            0..24,
        )
        .prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::tick::fuzz_cases()))]

        /// Statements are pieces of the text, in order, each starting on the line it says,
        /// numbered 1, 2, …; any text splits without a panic.
        #[test]
        fn statements_are_numbered_pieces_of_the_text_on_their_lines(text in sqlish()) {
            let statements = split(&text);
            let mut from = 0;
            for (i, st) in statements.iter().enumerate() {
                prop_assert_eq!(st.index, i + 1);
                prop_assert!(!st.text.is_empty());
                // Where the statement is: an occurrence after the previous one, on its line.
                let at = text[from..]
                    .match_indices(st.text.as_str())
                    .map(|(p, _)| p + from)
                    .find(|&p| text[..p].matches('\n').count() + 1 == st.line);
                prop_assert!(at.is_some(), "{:?} on line {} of {:?}", st.text, st.line, text);
                from = at.unwrap_or(0) + st.text.len();
            }
            let _ = is_complete(&text);
            let _ = st_snippets(&statements);
        }

        /// Text split at its statements and joined again with `;` splits the same way.
        #[test]
        fn joining_the_statements_splits_alike(text in sqlish()) {
            let texts: Vec<String> = split(&text).into_iter().map(|s| s.text).collect();
            // Only when each statement closes its quotes and comments (else a `;` is eaten).
            if texts.iter().all(|t| is_complete(&format!("{t};"))) {
                let joined = texts.iter().map(|t| format!("{t};\n")).collect::<String>();
                let again: Vec<String> = split(&joined).into_iter().map(|s| s.text).collect();
                prop_assert_eq!(again, texts);
            }
        }
    }

    fn st_snippets(statements: &[Statement]) -> Vec<String> {
        statements.iter().map(Statement::snippet).collect()
    }
}
