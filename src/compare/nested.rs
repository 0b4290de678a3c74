//! Athena's (Trino's) text of arrays, maps and rows, read into a [`Cell`] shaped like the other
//! side's value so that the two compare element by element: `[1, 2, 3]`, maps `{a=1, b=2}`,
//! rows `{x=1, y=2}` (or `{1, 2}` without names), strings unquoted, NULL as `null`. Trino does
//! not quote strings, so a string holding `, ` or a bracket cannot be read back: such text stays
//! text (and differs from the value as a "type").

use super::value::Cell;
use crate::engine::athena::convert;

/// A parsed piece of text: a scalar's text, `[…]`, or `{…}` with optionally named entries.
#[derive(Debug)]
enum Node<'a> {
    Atom(&'a str),
    Seq(Vec<Node<'a>>),
    Braces(Vec<(Option<&'a str>, Node<'a>)>),
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// The text up to (not including) the first byte of `stops`, or to the end.
    fn atom(&mut self, stops: &[u8]) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if stops.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    /// After an item: `,` (and the spaces after it) continues, `close` ends the list.
    fn next_item(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                while self.peek() == Some(b' ') {
                    self.pos += 1;
                }
                Some(true)
            }
            b if b == close => {
                self.pos += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// The items of `[…]` or `{…}` (the opening bracket just read) up to `close`.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        let mut items = Vec::new();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Some(items);
        }
        loop {
            items.push(item(self)?);
            if !self.next_item(close)? {
                return Some(items);
            }
        }
    }

    fn node(&mut self, stops: &[u8]) -> Option<Node<'a>> {
        match self.peek() {
            Some(b'[') => {
                self.pos += 1;
                Some(Node::Seq(self.items(b']', |p| p.node(b",]"))?))
            }
            Some(b'{') => {
                self.pos += 1;
                Some(Node::Braces(self.items(b'}', Self::entry)?))
            }
            _ => Some(Node::Atom(self.atom(stops))),
        }
    }

    /// One entry of `{…}`: `key=value`, or a value alone (a row without field names).
    fn entry(&mut self) -> Option<(Option<&'a str>, Node<'a>)> {
        let start = self.pos;
        if !matches!(self.peek(), Some(b'[' | b'{')) {
            let key = self.atom(b",}=");
            if self.peek() == Some(b'=') {
                self.pos += 1;
                return Some((Some(key), self.node(b",}")?));
            }
            self.pos = start;
        }
        Some((None, self.node(b",}")?))
    }
}

/// Reads Athena's text `text` of an array, map or row as a cell shaped like `like` (a
/// [`Cell::List`], [`Cell::Map`] or [`Cell::Row`]); `None` when the text is not of that shape.
pub fn read_like(text: &str, like: &Cell) -> Option<Cell> {
    let mut p = Parser { s: text, pos: 0 };
    let node = p.node(b"")?;
    if p.pos != text.len() || matches!(node, Node::Atom(_)) {
        return None;
    }
    shaped(&node, like)
}

fn shaped(node: &Node, like: &Cell) -> Option<Cell> {
    Some(match (node, like) {
        (Node::Atom(a), Cell::Text(t)) if a == t => Cell::Text(t.clone()),
        (Node::Atom("null"), _) => Cell::Null,
        (Node::Atom(a), like) => scalar_like(a, like),
        (Node::Seq(items), Cell::List(model)) => Cell::List(
            items
                .iter()
                .enumerate()
                .map(|(k, n)| shaped(n, model.get(k).or(model.first()).unwrap_or(&Cell::Null)))
                .collect::<Option<_>>()?,
        ),
        (Node::Braces(entries), Cell::Map(model)) => {
            let key_like = model.first().map_or(&Cell::Null, |e| &e.0);
            let mut out = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let key = scalar_like((*key)?, key_like);
                let value_like = model
                    .iter()
                    .find(|(k, _)| k.sort_cmp(&key).is_eq())
                    .or(model.first())
                    .map_or(&Cell::Null, |e| &e.1);
                out.push((key, shaped(value, value_like)?));
            }
            Cell::map(out)
        }
        (Node::Braces(entries), Cell::Row(model)) => Cell::Row(
            entries
                .iter()
                .enumerate()
                .map(|(k, (name, n))| {
                    let like = model.get(k).map_or(&Cell::Null, |f| &f.1);
                    Some((name.unwrap_or_default().to_string(), shaped(n, like)?))
                })
                .collect::<Option<_>>()?,
        ),
        _ => return None,
    })
}

/// A scalar's text read as the kind of value `like` is (numbers as numbers, dates as dates…);
/// text when it does not read so.
fn scalar_like(a: &str, like: &Cell) -> Cell {
    let read = match like {
        Cell::Int(_) => a.parse::<i128>().ok().map(Cell::Int).or_else(|| number(a)),
        Cell::Decimal(..) | Cell::Float(_) => number(a),
        Cell::Bool(_) => match a {
            "true" => Some(Cell::Bool(true)),
            "false" => Some(Cell::Bool(false)),
            _ => None,
        },
        Cell::Date(_) => convert::parse_date(a).map(Cell::Date),
        Cell::Timestamp(..) => {
            let digits = a.rsplit_once('.').map_or(0, |(_, f)| {
                f.bytes().take_while(u8::is_ascii_digit).count() as u32
            });
            convert::parse_timestamp(a)
                .or_else(|| convert::parse_timestamp_tz(a))
                .map(|ns| Cell::Timestamp(ns as i128, digits.min(9)))
        }
        Cell::Time(..) => {
            let digits = a.rsplit_once('.').map_or(0, |(_, f)| f.len() as u32);
            convert::parse_time(a).map(|ns| Cell::Time(ns as i128, digits.min(9)))
        }
        _ => None,
    };
    read.unwrap_or_else(|| Cell::Text(a.to_string()))
}

/// A number as Athena prints one: a plain decimal (`-1.50`) exactly, else a double (`1.0E7`,
/// `NaN`, `Infinity`).
fn number(a: &str) -> Option<Cell> {
    let digits = a.strip_prefix('-').unwrap_or(a);
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1;
    if plain {
        let scale = digits.split_once('.').map_or(0, |(_, f)| f.len() as u32);
        if let Some(m) = convert::parse_decimal(a, scale) {
            return Some(Cell::Decimal(m, scale));
        }
    }
    a.parse::<f64>().ok().map(Cell::Float)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::Tolerance;

    fn text(t: &str) -> Cell {
        Cell::Text(t.into())
    }

    #[test]
    fn athena_text_reads_as_the_other_sides_shape() {
        let list = Cell::List(vec![Cell::Int(1), Cell::Int(2), Cell::Null]);
        assert_eq!(read_like("[1, 2, null]", &list), Some(list.clone()));
        assert_eq!(read_like("[1,2,null]", &list), Some(list.clone()));
        assert_eq!(read_like("[]", &list), Some(Cell::List(vec![])));
        let words = Cell::List(vec![text("hello"), text("null")]);
        assert_eq!(read_like("[hello, null]", &words), Some(words.clone()));
        let floats = Cell::List(vec![Cell::Float(1.8622061957186546e7)]);
        assert_eq!(read_like("[1.8622061957186546E7]", &floats), Some(floats));
        // Java's Double.toString forms, as Trino prints doubles.
        let odd = Cell::List(vec![Cell::Float(f64::INFINITY), Cell::Float(1.0e-5)]);
        assert_eq!(read_like("[Infinity, 1.0E-5]", &odd), Some(odd.clone()));
        let nan = read_like("[NaN, -Infinity]", &odd).unwrap();
        let want = Cell::List(vec![Cell::Float(f64::NAN), Cell::Float(f64::NEG_INFINITY)]);
        assert_eq!(nan.differs(&want, Tolerance::default()), None);

        let map = Cell::map(vec![
            (text("low"), Cell::Float(17.55)),
            (text("high"), Cell::Float(45.0)),
        ]);
        let read = read_like("{low=17.55, high=45.0}", &map).unwrap();
        assert_eq!(read.differs(&map, Tolerance::default()), None);
        assert!(
            read_like("{17.55, 45.0}", &map).is_none(),
            "a map needs keys"
        );

        let row = Cell::Row(vec![
            ("first".into(), Cell::Date(0)),
            ("days".into(), Cell::Int(3)),
        ]);
        assert_eq!(
            read_like("{first=1970-01-01, days=3}", &row),
            Some(row.clone())
        );
        let unnamed = read_like("{1970-01-01, 3}", &row).unwrap();
        assert_eq!(unnamed.differs(&row, Tolerance::default()), None);

        let nested = Cell::List(vec![Cell::List(vec![text("a")]), Cell::List(vec![])]);
        assert_eq!(read_like("[[a], []]", &nested), Some(nested.clone()));
        let tz = Cell::List(vec![Cell::Timestamp(60_000_000_000, 3)]);
        assert_eq!(
            read_like("[1970-01-01 05:31:00.000 +05:30]", &tz),
            Some(tz.clone())
        );
    }

    #[test]
    fn text_of_another_shape_is_not_read() {
        let list = Cell::List(vec![Cell::Int(1)]);
        for bad in ["1", "[1", "[1]]", "{a=1}", "[1] ", "", "[a, b"] {
            assert_eq!(read_like(bad, &list), None, "{bad:?}");
        }
        // A string with `, ` in it reads as two elements: the lengths differ.
        let words = Cell::List(vec![text("a, b")]);
        let read = read_like("[a, b]", &words).unwrap();
        assert_eq!(
            read.differs(&words, Tolerance::default()),
            Some("array length")
        );
    }
}
