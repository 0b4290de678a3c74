//! Athena's `<query id>.csv.metadata`: a binary protobuf of the query's ColumnInfo messages.
//! This small reader walks any protobuf message and takes as a column each nested message whose
//! field 6 (`Type`) names a SQL type, reading ColumnInfo by field number: 4 `Name`, 5 `Label`,
//! 6 `Type`, 7 `Precision`, 8 `Scale`. Protobuf leaves out fields whose value is zero, so an
//! absent precision or scale is 0 (a `decimal(38,0)` has no field 8). Anything it does not
//! recognise yields no columns (the caller then infers types from the values).

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

/// ColumnInfo field numbers.
const NAME: u64 = 4;
const LABEL: u64 = 5;
const TYPE: u64 = 6;
const PRECISION: u64 = 7;
const SCALE: u64 = 8;

fn column(fields: &[(u64, Value<'_>)]) -> Option<ColumnMeta> {
    let text = |num: u64| {
        fields.iter().rev().find_map(|(n, v)| match v {
            Value::Bytes(b) if *n == num => std::str::from_utf8(b).ok(),
            _ => None,
        })
    };
    let int = |num: u64| {
        fields
            .iter()
            .rev()
            .find_map(|(n, v)| match v {
                Value::Varint(x) if *n == num => Some((*x).min(i32::MAX as u64) as i32),
                _ => None,
            })
            .unwrap_or(0)
    };
    let ty = text(TYPE).filter(|t| is_type(t))?;
    let name = text(LABEL)
        .filter(|s| !s.is_empty())
        .or_else(|| text(NAME).filter(|s| !s.is_empty()))?;
    Some(ColumnMeta {
        name: name.to_string(),
        athena_type: ty.to_string(),
        precision: int(PRECISION),
        scale: int(SCALE),
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

    /// A ColumnInfo as Athena writes it: proto3 leaves out zero-valued fields (precision,
    /// scale, an empty catalog name), and `Nullable` (9) and `CaseSensitive` (10) follow.
    fn col(name: &str, ty: &str, p: u8, s: u8) -> Vec<u8> {
        let mut parts = vec![
            string(1, "hive"),
            string(4, name),
            string(5, name),
            string(6, ty),
        ];
        if p != 0 {
            parts.push(int(7, p));
        }
        if s != 0 {
            parts.push(int(8, s));
        }
        parts.push(int(9, 1));
        parts.push(int(10, 1));
        let mut body = parts.concat();
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
            // Scale 0 is absent: the integers after the type are precision and Nullable.
            col("n", "decimal", 38, 0),
            col("_col4", "bigint", 19, 0),
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
                ("px", "decimal", 10, 2),
                ("n", "decimal", 38, 0),
                ("_col4", "bigint", 19, 0)
            ]
        );
        assert!(columns(b"not protobuf at all \xff\xff").is_empty());
    }

    #[test]
    fn fields_are_read_by_number_in_any_order_and_the_label_wins() {
        // Scale before precision, no label: the name is used.
        let body = [
            int(8, 3),
            string(6, "decimal"),
            int(7, 12),
            string(4, "price"),
            string(3, "ticks"),
        ]
        .concat();
        let mut msg = vec![(1 << 3 | 2) as u8, body.len() as u8];
        msg.extend(body);
        let cols = columns(&msg);
        assert_eq!(cols.len(), 1);
        assert_eq!(
            (cols[0].name.as_str(), cols[0].precision, cols[0].scale),
            ("price", 12, 3)
        );
        // A type name in another field is not a column's type.
        let body = [string(4, "x"), string(5, "decimal")].concat();
        let mut msg = vec![(1 << 3 | 2) as u8, body.len() as u8];
        msg.extend(body);
        assert!(columns(&msg).is_empty());
    }
}

/// Property tests (cases: `STOCKLAKE_FUZZ_CASES`, default 256).
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// A field as proto3 writes it: zero and empty values left out.
    fn field(num: u64, value: Result<u64, &str>, out: &mut Vec<u8>) {
        match value {
            Ok(0) => {}
            Ok(n) => {
                varint(num << 3, out);
                varint(n, out);
            }
            Err("") => {}
            Err(s) => {
                varint(num << 3 | 2, out);
                varint(s.len() as u64, out);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn column() -> impl Strategy<Value = (String, String, u64, u64)> {
        (
            "[a-z_][a-z0-9_]{0,20}|_col[0-9]{1,3}|\\PC{1,10}",
            prop::sample::select(vec![
                "varchar",
                "bigint",
                "double",
                "decimal",
                "date",
                "timestamp",
                "boolean",
                "integer",
                "array",
                "row",
                "map",
            ]),
            0u64..2_147_483_648,
            0u64..39,
        )
            .prop_map(|(n, t, p, s)| (n, t.to_string(), p, s))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::tick::fuzz_cases()))]

        /// ColumnInfo messages, in Athena's layout with any precision and scale (absent when
        /// zero) and names of any length, are read back by field number.
        #[test]
        fn encoded_columns_read_back(cols in prop::collection::vec(column(), 1..12)) {
            let mut msg = Vec::new();
            for (name, ty, p, s) in &cols {
                let mut body = Vec::new();
                field(1, Err("hive"), &mut body);
                field(4, Err(name), &mut body);
                field(5, Err(name), &mut body);
                field(6, Err(ty), &mut body);
                field(7, Ok(*p), &mut body);
                field(8, Ok(*s), &mut body);
                field(9, Ok(1), &mut body);
                field(10, Ok(u64::from(ty == "varchar")), &mut body);
                varint(1 << 3 | 2, &mut msg);
                varint(body.len() as u64, &mut msg);
                msg.extend(body);
            }
            let got: Vec<(String, String, u64, u64)> = columns(&msg)
                .into_iter()
                .map(|c| (c.name, c.athena_type, c.precision as u64, c.scale as u64))
                .collect();
            prop_assert_eq!(got, cols);
        }

        /// Any bytes give columns or none; never a panic.
        #[test]
        fn any_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            let _ = columns(&bytes);
        }
    }
}
