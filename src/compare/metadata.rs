//! Athena's `<query id>.csv.metadata`: a binary protobuf whose schema Athena does not publish.
//! This small reader walks any protobuf message, finds the nested messages that hold a column's
//! type name (a string such as `varchar` or `decimal`), and takes the string just before it as
//! the column's label and the first two integers after it as precision and scale. Anything it
//! does not recognise yields no columns (the caller then infers types from the values).

use crate::engine::athena::convert::ColumnMeta;

/// One protobuf field: number and value.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The fields of `buf` as one message, or None when it is not a well-formed message.
fn fields(buf: &[u8]) -> Option<Vec<(u64, Value<'_>)>> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (num, wire) = (key >> 3, key & 7);
        if num == 0 {
            return None;
        }
        let v = match wire {
            0 => Value::Varint(varint(buf, &mut pos)?),
            1 => {
                pos = pos.checked_add(8).filter(|p| *p <= buf.len())?;
                Value::Fixed
            }
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).ok()?;
                let end = pos.checked_add(len).filter(|e| *e <= buf.len())?;
                let v = Value::Bytes(&buf[pos..end]);
                pos = end;
                v
            }
            5 => {
                pos = pos.checked_add(4).filter(|p| *p <= buf.len())?;
                Value::Fixed
            }
            _ => return None,
        };
        out.push((num, v));
    }
    Some(out)
}

const TYPES: &[&str] = &[
    "boolean",
    "tinyint",
    "smallint",
    "integer",
    "int",
    "bigint",
    "real",
    "float",
    "double",
    "decimal",
    "varchar",
    "char",
    "string",
    "date",
    "timestamp",
    "time",
    "varbinary",
    "array",
    "map",
    "row",
    "json",
    "interval",
    "uuid",
    "ipaddress",
];

fn is_type(s: &str) -> bool {
    let base = s.split('(').next().unwrap_or("").trim();
    TYPES.contains(&base) || base.starts_with("timestamp") || base.starts_with("interval")
}

fn column(fields: &[(u64, Value<'_>)]) -> Option<ColumnMeta> {
    let strings: Vec<(usize, &str)> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, (_, v))| match v {
            Value::Bytes(b) => std::str::from_utf8(b).ok().map(|s| (i, s)),
            _ => None,
        })
        .collect();
    let (ti, ty) = *strings.iter().rev().find(|(_, s)| is_type(s))?;
    let (_, name) = *strings
        .iter()
        .rev()
        .find(|(i, s)| *i < ti && !s.is_empty())?;
    let ints: Vec<u64> = fields[ti + 1..]
        .iter()
        .filter_map(|(_, v)| match v {
            Value::Varint(n) => Some(*n),
            _ => None,
        })
        .collect();
    Some(ColumnMeta {
        name: name.to_string(),
        athena_type: ty.to_string(),
        precision: ints.first().map_or(0, |p| (*p).min(i32::MAX as u64) as i32),
        scale: ints.get(1).map_or(0, |s| (*s).min(i32::MAX as u64) as i32),
        nullable: true,
    })
}

/// The columns described by a `.csv.metadata` file, in order (empty when none are recognised).
pub fn columns(bytes: &[u8]) -> Vec<ColumnMeta> {
    fn walk(buf: &[u8], depth: usize, out: &mut Vec<ColumnMeta>) {
        let Some(fs) = fields(buf) else { return };
        let nested: Vec<&[u8]> = fs
            .iter()
            .filter_map(|(_, v)| match v {
                Value::Bytes(b) if fields(b).is_some_and(|f| !f.is_empty()) => Some(*b),
                _ => None,
            })
            .collect();
        // A column message holds strings only as leaves; a container holds column messages.
        let children_are_columns = nested
            .iter()
            .filter(|b| fields(b).and_then(|f| column(&f)).is_some())
            .count();
        if depth > 0 && children_are_columns == 0 {
            if let Some(c) = column(&fs) {
                out.push(c);
            }
            return;
        }
        if depth < 8 {
            for b in nested {
                walk(b, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(bytes, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(num: u64, s: &str) -> Vec<u8> {
        let mut v = vec![(num << 3 | 2) as u8, s.len() as u8];
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn int(num: u64, n: u8) -> Vec<u8> {
        vec![(num << 3) as u8, n]
    }

    fn col(name: &str, ty: &str, p: u8, s: u8) -> Vec<u8> {
        let mut body = [
            string(1, "hive"),
            string(2, ""),
            string(3, ""),
            string(4, name),
            string(5, name),
            string(6, ty),
            int(7, p),
            int(8, s),
        ]
        .concat();
        let mut msg = vec![(1 << 3 | 2) as u8, body.len() as u8];
        msg.append(&mut body);
        msg
    }

    #[test]
    fn reads_columns_from_a_hand_encoded_message() {
        let msg = [
            col("symbol", "varchar", 127, 0),
            col("date", "date", 0, 0),
            col("px", "decimal", 10, 2),
        ]
        .concat();
        let cols = columns(&msg);
        let got: Vec<(&str, &str, i32, i32)> = cols
            .iter()
            .map(|c| {
                (
                    c.name.as_str(),
                    c.athena_type.as_str(),
                    c.precision,
                    c.scale,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("symbol", "varchar", 127, 0),
                ("date", "date", 0, 0),
                ("px", "decimal", 10, 2)
            ]
        );
        assert!(columns(b"not protobuf at all \xff\xff").is_empty());
    }
}
