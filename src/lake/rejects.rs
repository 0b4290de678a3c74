//! Quarantined events: every event the consumer cannot turn into a tick is kept, with its raw
//! bytes and the reason, as one JSON line in `<lake>/_rejects/<topic>/part-<topic>-<partition>-<first offset>.jsonl`.

use serde::{Deserialize, Serialize};

use super::layout::{REJECTS_DIR, escape_value};

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
    /// The raw message value, base64 (exact bytes).
    pub value_base64: String,
    /// The value as text, when it is valid UTF-8 (for people reading the file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_text: Option<String>,
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
        Reject {
            topic: topic.to_string(),
            partition,
            offset,
            reason,
            key_base64: key.map(base64),
            value_base64: base64(value),
            value_text: std::str::from_utf8(value).ok().map(str::to_string),
        }
    }

    /// The raw value bytes.
    pub fn value(&self) -> Option<Vec<u8>> {
        unbase64(&self.value_base64)
    }
}

/// The rejects file of a batch, relative to the lake root.
pub fn rejects_key(topic: &str, partition: i32, first_offset: i64) -> String {
    let t = escape_value(topic);
    format!("{REJECTS_DIR}/{t}/part-{t}-{partition}-{first_offset:020}.jsonl")
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
