//! Splitting SQL text into statements at `;`, outside quotes and comments, keeping the line each
//! statement starts on (errors name it). Also tells the REPL whether input is a whole statement.

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Single,
    Double,
    LineComment,
    BlockComment,
}

/// Scans `text`, calling `on_end(byte_index)` at each statement-ending `;`. Returns the state at
/// the end and whether code (not comments or blanks) follows the last `;`.
fn scan(text: &str, mut on_end: impl FnMut(usize)) -> (State, bool) {
    let b = text.as_bytes();
    let mut state = State::Code;
    let mut pending_code = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match state {
            State::Code => match c {
                b';' => {
                    on_end(i);
                    pending_code = false;
                }
                b'\'' => {
                    state = State::Single;
                    pending_code = true;
                }
                b'"' => {
                    state = State::Double;
                    pending_code = true;
                }
                b'-' if next == Some(b'-') => {
                    state = State::LineComment;
                    i += 1;
                }
                b'/' if next == Some(b'*') => {
                    state = State::BlockComment;
                    i += 1;
                }
                c if c.is_ascii_whitespace() => {}
                _ => pending_code = true,
            },
            State::Single if c == b'\'' => state = State::Code, // '' re-enters at once
            State::Double if c == b'"' => state = State::Code,
            State::LineComment if c == b'\n' => state = State::Code,
            State::BlockComment if c == b'*' && next == Some(b'/') => {
                state = State::Code;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    (state, pending_code)
}

/// Splits `text` into its non-empty statements.
pub fn split(text: &str) -> Vec<Statement> {
    let mut ends = Vec::new();
    let (_, _) = scan(text, |i| ends.push(i));
    let mut out = Vec::new();
    let mut start = 0;
    let mut pieces: Vec<(usize, usize)> = ends.iter().map(|&e| (0, e)).collect();
    for p in &mut pieces {
        p.0 = start;
        start = p.1 + 1;
    }
    pieces.push((start, text.len()));
    for (s, e) in pieces {
        let piece = &text[s..e];
        if !has_code(piece) {
            continue;
        }
        let lead = piece.len() - piece.trim_start().len();
        let line = text[..s + lead].matches('\n').count() + 1;
        out.push(Statement {
            text: piece.trim().to_string(),
            line,
            index: out.len() + 1,
        });
    }
    out
}

/// Whether `text` holds anything but blanks and comments.
pub fn has_code(text: &str) -> bool {
    let mut any = false;
    let (_, pending) = scan(text, |_| any = true);
    any || pending
}

/// Whether `text` is ready to run: every statement ended with `;` (or there is no code at all),
/// and no quote or block comment is left open.
pub fn is_complete(text: &str) -> bool {
    let (state, pending) = scan(text, |_| {});
    matches!(state, State::Code | State::LineComment) && !pending
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
}
