//! Quarantined events: every event the consumer cannot turn into a tick is kept, with its raw
//! bytes (a bounded prefix, its length and hash for a huge one) and the reason, as one row of
//! the rejects Delta table (`<lake>/rejects/`, [`rejects_schema`]).

use serde::{Deserialize, Serialize};

/// How much of a rejected value is kept: a longer one keeps this prefix, its length and its
/// SHA-256, so one huge poison event cannot blow up the rejects file.
pub const KEPT_VALUE_BYTES: usize = 64 << 10;

/// One rejected event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// Why it was rejected.
    pub reason: String,
    /// The message key, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The kept value (see [`KEPT_VALUE_BYTES`]) as text, when it is UTF-8. Neither this nor
    /// `value_base64` for a null payload (a tombstone); `""` for an empty one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_text: Option<String>,
    /// The kept value as base64, when it is not UTF-8 (exact bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_base64: Option<String>,
    /// The whole value's length in bytes.
    pub value_bytes: u64,
    /// SHA-256 of the whole value (hex), when only a prefix is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_sha256: Option<String>,
}

impl Reject {
    pub fn new(
        topic: &str,
        partition: i32,
        offset: i64,
        reason: String,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Self {
        let truncated = value.len() > KEPT_VALUE_BYTES;
        let kept = &value[..value.len().min(KEPT_VALUE_BYTES)];
        let (value_text, value_base64) = match std::str::from_utf8(kept) {
            Ok(text) => (Some(text.to_string()), None),
            // UTF-8 cut inside its last character by the prefix: keep the whole characters.
            Err(e) if truncated && e.error_len().is_none() => (
                Some(String::from_utf8_lossy(&kept[..e.valid_up_to()]).into_owned()),
                None,
            ),
            Err(_) => (None, Some(base64(kept))),
        };
        Reject {
            topic: topic.to_string(),
            partition,
            offset,
            reason,
            key_base64: key.map(base64),
            value_text,
            value_base64,
            value_bytes: value.len() as u64,
            value_sha256: truncated.then(|| sha256_hex(value)),
        }
    }

    /// The kept value bytes: the whole value unless [`Reject::is_truncated`].
    pub fn value(&self) -> Option<Vec<u8>> {
        match (&self.value_text, &self.value_base64) {
            (Some(text), _) => Some(text.as_bytes().to_vec()),
            (None, Some(b64)) => unbase64(b64),
            (None, None) => Some(Vec::new()),
        }
    }

    /// Only a prefix of the value is kept (with its length and hash).
    pub fn is_truncated(&self) -> bool {
        self.value_sha256.is_some()
    }
}

/// The rejects table's columns (one row per [`Reject`], the same fields).
pub fn rejects_schema() -> arrow::datatypes::SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    static SCHEMA: std::sync::OnceLock<arrow::datatypes::SchemaRef> = std::sync::OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            std::sync::Arc::new(Schema::new(vec![
                Field::new("topic", DataType::Utf8, false),
                Field::new("partition", DataType::Int32, false),
                Field::new("offset", DataType::Int64, false),
                Field::new("reason", DataType::Utf8, false),
                Field::new("key_base64", DataType::Utf8, true),
                Field::new("value_text", DataType::Utf8, true),
                Field::new("value_base64", DataType::Utf8, true),
                Field::new("value_bytes", DataType::Int64, false),
                Field::new("value_sha256", DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// Rejects as rows of the rejects table.
pub fn to_record_batch(rejects: &[Reject]) -> arrow::record_batch::RecordBatch {
    use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray};
    use std::sync::Arc;
    let text = |f: fn(&Reject) -> Option<&str>| -> ArrayRef {
        Arc::new(rejects.iter().map(f).collect::<StringArray>())
    };
    let columns: Vec<ArrayRef> = vec![
        text(|r| Some(&r.topic)),
        Arc::new(rejects.iter().map(|r| r.partition).collect::<Int32Array>()),
        Arc::new(rejects.iter().map(|r| r.offset).collect::<Int64Array>()),
        text(|r| Some(&r.reason)),
        text(|r| r.key_base64.as_deref()),
        text(|r| r.value_text.as_deref()),
        text(|r| r.value_base64.as_deref()),
        Arc::new(
            rejects
                .iter()
                .map(|r| r.value_bytes as i64)
                .collect::<Int64Array>(),
        ),
        text(|r| r.value_sha256.as_deref()),
    ];
    arrow::record_batch::RecordBatch::try_new(rejects_schema(), columns)
        .expect("the columns match the rejects schema")
}

/// SHA-256 of `data` as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn unbase64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits & 0xFF) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_value_keeps_a_prefix_its_length_and_hash_and_no_copy() {
        let huge = "x".repeat(10 << 20);
        let r = Reject::new("t", 0, 7, "oversized".into(), None, huge.as_bytes());
        let line = serde_json::to_string(&r).unwrap();
        assert!(line.len() < KEPT_VALUE_BYTES + 1024, "{} bytes", line.len());
        assert!(r.is_truncated() && r.value_base64.is_none());
        assert_eq!(r.value_bytes, 10 << 20);
        assert_eq!(r.value().unwrap(), &huge.as_bytes()[..KEPT_VALUE_BYTES]);
        assert_eq!(
            r.value_sha256.as_deref(),
            Some(sha256_hex(huge.as_bytes()).as_str())
        );
        // A cut inside a multi-byte character keeps whole characters.
        let wide = "é".repeat(KEPT_VALUE_BYTES);
        let r = Reject::new("t", 0, 8, "oversized".into(), None, wide.as_bytes());
        let kept = r.value_text.as_deref().unwrap();
        assert!(kept.chars().all(|c| c == 'é') && kept.len() == KEPT_VALUE_BYTES);
    }

    #[test]
    fn a_value_is_kept_once_as_text_or_as_base64() {
        let r = Reject::new("t", 0, 1, "bad".into(), Some(b"k"), b"not json");
        assert_eq!(r.value_text.as_deref(), Some("not json"));
        assert_eq!((r.value_base64.as_deref(), r.is_truncated()), (None, false));
        let raw = b"\xff\xfe{}";
        let r = Reject::new("t", 0, 2, "bad".into(), None, raw);
        assert_eq!(
            (r.value_text.as_deref(), r.value().unwrap()),
            (None, raw.to_vec())
        );
        let back: Reject = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(sha256_hex(b"abc").len(), 64);
        assert!(sha256_hex(b"abc").starts_with("ba7816bf"));
    }

    #[test]
    fn base64_round_trips() {
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
        assert_eq!(base64(b"M"), "TQ==");
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37) ^ 0xA5).collect();
            assert_eq!(unbase64(&base64(&data)).unwrap(), data);
        }
    }
}
