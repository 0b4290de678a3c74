//! The one SQL tokenizer: words (keywords and identifiers), `'strings'` and `"quoted
//! identifiers"` (a doubled quote inside is one quote), numbers, punctuation, `--` and `/* */`
//! comments and whitespace, each with its byte span. Splitting statements, finding the outermost
//! `ORDER BY` and normalising SQL text for matching all read SQL through it.

use std::ops::Range;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A keyword or identifier: a letter or `_`, then letters, digits and `_`.
    Word,
    /// `"quoted identifier"`; `""` inside is one quote.
    QuotedIdent,
    /// `'string'`; `''` inside is one quote.
    String,
    /// Digits, with an optional fraction and exponent (`12`, `1.5`, `2e-3`).
    Number,
    /// Any other single character: `( ) ; , . * =` …
    Punct,
    /// `-- …` up to the end of the line (the newline is whitespace).
    LineComment,
    /// `/* … */`, not nested.
    BlockComment,
    /// A run of whitespace.
    Whitespace,
}

/// One token of a SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: Kind,
    /// The token as written, quotes and comment markers included.
    pub text: &'a str,
    /// Byte offset of `text` in the source.
    pub start: usize,
    /// A string, quoted identifier or block comment the source ends inside of.
    pub unterminated: bool,
}

impl Token<'_> {
    /// Byte offset just past the token.
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    /// The token's bytes in the source.
    pub fn span(&self) -> Range<usize> {
        self.start..self.end()
    }

    /// Whitespace or a comment: nothing a statement consists of.
    pub fn is_trivia(&self) -> bool {
        matches!(
            self.kind,
            Kind::Whitespace | Kind::LineComment | Kind::BlockComment
        )
    }

    /// The punctuation character `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct && self.text.starts_with(c)
    }

    /// The word `w`, in any case (`order` is `ORDER`).
    pub fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(w)
    }
}

/// The tokens of a SQL text, in order; together they cover every byte of it.
#[derive(Debug, Clone)]
pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

/// Tokenizes `src`.
pub fn tokens(src: &str) -> Lexer<'_> {
    Lexer { src, pos: 0 }
}

/// The code tokens of `src` (no whitespace or comments), each with its parenthesis depth: how
/// many `(` enclose it. A `(` and its `)` sit at the depth outside them; a stray `)` never takes
/// the depth below 0.
pub fn code_with_depth(src: &str) -> impl Iterator<Item = (usize, Token<'_>)> {
    let mut depth = 0usize;
    tokens(src).filter(|t| !t.is_trivia()).map(move |t| {
        if t.is_punct(')') {
            depth = depth.saturating_sub(1);
        }
        let at = depth;
        if t.is_punct('(') {
            depth += 1;
        }
        (at, t)
    })
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        let rest = &self.src[self.pos..];
        let c = rest.chars().next()?;
        let (kind, len, unterminated) = match c {
            c if c.is_whitespace() => (Kind::Whitespace, run(rest, char::is_whitespace), false),
            '-' if rest.starts_with("--") => (
                Kind::LineComment,
                rest.find('\n').unwrap_or(rest.len()),
                false,
            ),
            '/' if rest.starts_with("/*") => match rest[2..].find("*/") {
                Some(i) => (Kind::BlockComment, i + 4, false),
                None => (Kind::BlockComment, rest.len(), true),
            },
            '\'' => {
                let (len, open) = quoted(rest, '\'');
                (Kind::String, len, open)
            }
            '"' => {
                let (len, open) = quoted(rest, '"');
                (Kind::QuotedIdent, len, open)
            }
            c if c.is_ascii_digit() => (Kind::Number, number(rest), false),
            c if c.is_alphabetic() || c == '_' => (
                Kind::Word,
                run(rest, |c| c.is_alphanumeric() || c == '_'),
                false,
            ),
            c => (Kind::Punct, c.len_utf8(), false),
        };
        let token = Token {
            kind,
            text: &rest[..len],
            start: self.pos,
            unterminated,
        };
        self.pos += len;
        Some(token)
    }
}

/// Length of the leading run of `s` whose characters satisfy `f`.
fn run(s: &str, f: impl Fn(char) -> bool) -> usize {
    s.find(|c| !f(c)).unwrap_or(s.len())
}

/// Length of the quoted token `s` starts with (quote `q`, doubled inside), and whether `s` ends
/// before its closing quote.
fn quoted(s: &str, q: char) -> (usize, bool) {
    let mut i = q.len_utf8();
    loop {
        let Some(k) = s[i..].find(q) else {
            return (s.len(), true);
        };
        i += k + q.len_utf8();
        if !s[i..].starts_with(q) {
            return (i, false);
        }
        i += q.len_utf8();
    }
}

/// Length of the number `s` starts with: digits, then `.digits`, then `e[+-]digits`.
fn number(s: &str) -> usize {
    let digits = |from: usize| from + run(&s[from..], |c| c.is_ascii_digit());
    let mut i = digits(0);
    let b = s.as_bytes();
    let digit_at = |j: usize| b.get(j).is_some_and(u8::is_ascii_digit);
    if b.get(i) == Some(&b'.') && digit_at(i + 1) {
        i = digits(i + 1);
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        if digit_at(i + 1 + sign) {
            i = digits(i + 1 + sign);
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<(Kind, &str)> {
        tokens(src).map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn tokens_cover_the_text_with_their_spans() {
        let src = "SELECT a_1, \"Col\" FROM t WHERE x >= 1.5e-3 -- é\n/* c */;";
        let mut at = 0;
        for t in tokens(src) {
            assert_eq!(t.start, at, "{t:?}");
            assert_eq!(&src[t.span()], t.text);
            at = t.end();
        }
        assert_eq!(at, src.len());
        let code: Vec<_> = kinds(src)
            .into_iter()
            .filter(|(k, _)| *k != Kind::Whitespace)
            .collect();
        use Kind::*;
        assert_eq!(
            code,
            [
                (Word, "SELECT"),
                (Word, "a_1"),
                (Punct, ","),
                (QuotedIdent, "\"Col\""),
                (Word, "FROM"),
                (Word, "t"),
                (Word, "WHERE"),
                (Word, "x"),
                (Punct, ">"),
                (Punct, "="),
                (Number, "1.5e-3"),
                (LineComment, "-- é"),
                (BlockComment, "/* c */"),
                (Punct, ";"),
            ]
        );
    }

    /// Checks that each text tokenizes as shown.
    fn assert_tokens(cases: &[(&str, &[(Kind, &str)])]) {
        for (src, want) in cases {
            assert_eq!(kinds(src), *want, "{src:?}");
        }
    }

    #[test]
    fn doubled_quotes_stay_inside_strings_and_quoted_identifiers() {
        use Kind::*;
        assert_tokens(&[
            (
                "'it''s' \"a\"\"b\"",
                &[
                    (String, "'it''s'"),
                    (Whitespace, " "),
                    (QuotedIdent, "\"a\"\"b\""),
                ],
            ),
            ("''''", &[(String, "''''")]),
            (
                "'' ''",
                &[(String, "''"), (Whitespace, " "), (String, "''")],
            ),
            // The other quote, `;` and comment markers are plain text inside a string.
            ("'\"; -- /*'x", &[(String, "'\"; -- /*'"), (Word, "x")]),
        ]);
    }

    #[test]
    fn comments_hide_semicolons_and_quotes() {
        use Kind::*;
        let ws = |s| (Whitespace, s);
        assert_tokens(&[
            (
                "-- it's; \"x\nSELECT",
                &[(LineComment, "-- it's; \"x"), ws("\n"), (Word, "SELECT")],
            ),
            (
                "/* ' ; \" -- */1",
                &[(BlockComment, "/* ' ; \" -- */"), (Number, "1")],
            ),
            // Not nested: the first `*/` ends the comment.
            (
                "/* /* */ */",
                &[
                    (BlockComment, "/* /* */"),
                    ws(" "),
                    (Punct, "*"),
                    (Punct, "/"),
                ],
            ),
            // A lone `-` or `/` is punctuation.
            ("-/", &[(Punct, "-"), (Punct, "/")]),
        ]);
        // `/*/` does not close itself.
        assert!(tokens("/*/").next().is_some_and(|t| t.unterminated));
    }

    #[test]
    fn unterminated_tokens_run_to_the_end_and_say_so() {
        for (src, kind) in [
            ("'abc; --", Kind::String),
            ("'it''s", Kind::String),
            ("\"col", Kind::QuotedIdent),
            ("/* ; '", Kind::BlockComment),
        ] {
            let all: Vec<_> = tokens(src).collect();
            assert_eq!(all.len(), 1, "{src}: {all:?}");
            assert_eq!((all[0].kind, all[0].text), (kind, src));
            assert!(all[0].unterminated, "{src}");
        }
        let line = tokens("-- no newline").next();
        assert!(line.is_some_and(|t| t.kind == Kind::LineComment && !t.unterminated));
        assert!(tokens("'done'").all(|t| !t.unterminated));
        assert_eq!(tokens("").count(), 0);
    }

    #[test]
    fn numbers_words_and_unicode() {
        use Kind::*;
        assert_tokens(&[
            ("12.x", &[(Number, "12"), (Punct, "."), (Word, "x")]),
            ("1e", &[(Number, "1"), (Word, "e")]),
            ("2E+10", &[(Number, "2E+10")]),
            (
                "_x9 café",
                &[(Word, "_x9"), (Whitespace, " "), (Word, "café")],
            ),
            (
                "a\u{a0}€",
                &[(Word, "a"), (Whitespace, "\u{a0}"), (Punct, "€")],
            ),
        ]);
    }

    /// The depth of each `ORDER` in `src`.
    fn order_depths(src: &str) -> Vec<usize> {
        code_with_depth(src)
            .filter(|(_, t)| t.is_word("order"))
            .map(|(d, _)| d)
            .collect()
    }

    #[test]
    fn depth_counts_nested_parentheses() {
        let depths: Vec<(usize, &str)> = code_with_depth("f(a, (b) /* ( */, ')') c")
            .map(|(d, t)| (d, t.text))
            .collect();
        assert_eq!(
            depths,
            [
                (0, "f"),
                (0, "("),
                (1, "a"),
                (1, ","),
                (1, "("),
                (2, "b"),
                (1, ")"),
                (1, ","),
                (1, "')'"),
                (0, ")"),
                (0, "c"),
            ]
        );
        assert_eq!(code_with_depth(") x").last().map(|(d, _)| d), Some(0));
        // ORDER BY of a subquery or window is inside parentheses; the outermost one is not.
        let sql = "SELECT lag(a) OVER (ORDER BY c) FROM (SELECT a FROM t ORDER BY a) ORDER BY 1;";
        assert_eq!(order_depths(sql), [1, 1, 0]);
        assert_eq!(order_depths("SELECT x FROM t order\n-- c\nby 1"), [0]);
        let hidden = "SELECT 'ORDER BY', \"order\" /* ORDER BY */ FROM t -- order by";
        assert!(order_depths(hidden).is_empty());
    }

    #[test]
    fn a_trailing_semicolon_is_its_own_token() {
        let all: Vec<_> = tokens("SELECT 1;").collect();
        let last = all.last().copied();
        assert!(last.is_some_and(|t| t.is_punct(';') && t.span() == (8..9)));
        assert!(tokens("SELECT ';'").all(|t| !t.is_punct(';')));
    }
}
