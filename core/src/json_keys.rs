//! Duplicate object keys in JSON text.
//!
//! serde_json, like most JSON readers, keeps the last of two equal keys in
//! an object and drops the other without a word. In the state file that
//! silently loses a container (and hides its VM); in the image manifest an
//! installed image. Files we must not misread are scanned with
//! [`find_duplicate_key`] before they are parsed.

use std::collections::HashSet;
use std::fmt;

/// A key that occurs twice in one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Where the object is: its keys and array indexes from the top, e.g.
    /// `["containers", "0a1b2c3d", "ports"]`; empty for the top level.
    pub path: Vec<String>,
    /// The repeated key.
    pub key: String,
}

impl fmt::Display for DuplicateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "duplicate key {:?} in ",
            crate::error::clip(&self.key, 80)
        )?;
        if self.path.is_empty() {
            return f.write_str("the top-level object");
        }
        let path: Vec<String> = self
            .path
            .iter()
            .map(|p| crate::error::clip(p, 80).into_owned())
            .collect();
        write!(f, "the object at {}", path.join("."))
    }
}

/// Scans `json` and returns the first key repeated within one object.
///
/// This is a structural scan, not a parser: it follows strings, objects and
/// arrays and compares keys, and is several times faster than a serde pass
/// (a 45 MB state file of 100,000 records is scanned in tens of
/// milliseconds). Whether the text is valid JSON is for the parser that
/// reads it next to say; on text that is not, the scan may find nothing.
pub fn find_duplicate_key(json: &[u8]) -> Option<DuplicateKey> {
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i + 1)?;
                let raw = &json[i + 1..end];
                if let Some(Frame::Object(obj)) = stack.last_mut() {
                    if obj.expect_key {
                        obj.expect_key = false;
                        if let Some(key) = obj.insert(raw) {
                            let path = stack[..stack.len() - 1]
                                .iter()
                                .map(Frame::position)
                                .collect();
                            return Some(DuplicateKey { path, key });
                        }
                    }
                }
                i = end + 1;
                continue;
            }
            b'{' => stack.push(Frame::Object(Object {
                expect_key: true,
                ..Object::default()
            })),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop()?;
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(obj)) => obj.expect_key = true,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    None
}

/// Index of the `"` that closes the string whose content starts at `from`.
fn string_end(json: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let rel = json[from..]
            .iter()
            .position(|b| *b == b'"' || *b == b'\\')?;
        let at = from + rel;
        if json[at] == b'"' {
            return Some(at);
        }
        from = at + 2; // skip the escaped character
        if from > json.len() {
            return None;
        }
    }
}

/// One open object or array.
enum Frame<'a> {
    Object(Object<'a>),
    /// An array and the index of its current element.
    Array(usize),
}

impl Frame<'_> {
    /// The key or index under which the next level lies, for the path.
    fn position(&self) -> String {
        match self {
            Frame::Object(o) => o.keys.last().map(RawKey::text).unwrap_or_default(),
            Frame::Array(n) => n.to_string(),
        }
    }
}

/// A key as it appears in the text; escaped ones are decoded to compare.
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
enum RawKey<'a> {
    Plain(&'a [u8]),
    Decoded(String),
}

impl RawKey<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            RawKey::Plain(b) => b,
            RawKey::Decoded(s) => s.as_bytes(),
        }
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

#[derive(Default)]
struct Object<'a> {
    expect_key: bool,
    keys: Vec<RawKey<'a>>,
    /// Whether keys have stopped arriving in ascending order (then a new
    /// key must be searched for; while sorted, comparing with the last
    /// one is enough).
    unsorted: bool,
    /// Set once keys stop arriving in ascending order (files we write are
    /// sorted, so usually never).
    set: Option<HashSet<Vec<u8>>>,
}

/// Objects up to this many keys are searched linearly (a record's fields,
/// which are not in sorted order); larger ones that are not sorted get a
/// hash set.
const LINEAR: usize = 32;

impl<'a> Object<'a> {
    /// Records `raw`; returns the key if it was already there.
    fn insert(&mut self, raw: &'a [u8]) -> Option<String> {
        let key = if raw.contains(&b'\\') {
            let quoted = [b"\"", raw, b"\""].concat();
            RawKey::Decoded(serde_json::from_slice::<String>(&quoted).ok()?)
        } else {
            RawKey::Plain(raw)
        };
        if let Some(set) = &mut self.set {
            if !set.insert(key.bytes().to_vec()) {
                return Some(key.text());
            }
            // Only the last key is kept from now on (for the path).
            self.keys.clear();
        } else if self.unsorted
            || self
                .keys
                .last()
                .is_some_and(|last| last.bytes() >= key.bytes())
        {
            // Not in ascending order: search what came before.
            self.unsorted = true;
            if self.keys.len() < LINEAR {
                if self.keys.iter().any(|k| k.bytes() == key.bytes()) {
                    return Some(key.text());
                }
            } else {
                let mut set: HashSet<Vec<u8>> =
                    self.keys.iter().map(|k| k.bytes().to_vec()).collect();
                if !set.insert(key.bytes().to_vec()) {
                    return Some(key.text());
                }
                self.set = Some(set);
                self.keys.clear();
            }
        }
        self.keys.push(key);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::cell::RefCell;

    fn dup(json: &str) -> Option<DuplicateKey> {
        find_duplicate_key(json.as_bytes())
    }

    #[test]
    fn finds_repeats_at_any_depth_and_names_where() {
        assert_eq!(dup(r#"{"a": 1, "b": [1, {"c": 2}]}"#), None);
        let d = dup(r#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(
            d.to_string(),
            r#"duplicate key "a" in the top-level object"#
        );
        let d = dup(r#"{"containers": {"x": {"ports": {"80": 1, "81": 2, "80": 3}}}}"#).unwrap();
        assert_eq!(d.path, ["containers", "x", "ports"]);
        assert_eq!(d.key, "80");
        assert!(d.to_string().contains("containers.x.ports"), "{d}");
        let d = dup(r#"[0, {"k": [{"z": 1, "z": 1}]}]"#).unwrap();
        assert_eq!(d.path, ["1", "k", "0"]);
        // Escapes are decoded before comparing: "\u0061" is "a".
        assert_eq!(dup(r#"{"a": 1, "\u0061": 2}"#).unwrap().key, "a");
        // Keys inside string values are text, not keys.
        assert_eq!(dup(r#"{"a": "{\"a\": 1, \"a\": 2}", "b": "\\"}"#), None);
        // Order does not matter.
        assert_eq!(dup(r#"{"b": 1, "c": 1, "a": 1, "c": 2}"#).unwrap().key, "c");
    }

    #[test]
    fn large_objects_and_garbage() {
        let mut keys: Vec<String> = (0..1000).map(|i| format!("\"k{i}\": {i}")).collect();
        let ok = format!("{{{}}}", keys.join(","));
        assert_eq!(dup(&ok), None);
        keys.push("\"k500\": 0".into());
        let bad = format!("{{{}}}", keys.join(","));
        assert_eq!(dup(&bad).unwrap().key, "k500");
        for junk in ["", "}", "]]]", "{\"a", "\"\\", "{\"a\":1,}", "[{]}"] {
            let _ = dup(junk);
        }
    }

    /// The reference: the same question answered through serde, which
    /// decodes every value (several times slower, obviously right).
    fn oracle(json: &[u8]) -> Option<String> {
        struct Walk<'a>(&'a RefCell<Option<String>>);
        impl<'de> DeserializeSeed<'de> for Walk<'_> {
            type Value = ();
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
                d.deserialize_any(self)
            }
        }
        impl<'de> Visitor<'de> for Walk<'_> {
            type Value = ();
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_bool<E>(self, _: bool) -> Result<(), E> {
                Ok(())
            }
            fn visit_i64<E>(self, _: i64) -> Result<(), E> {
                Ok(())
            }
            fn visit_u64<E>(self, _: u64) -> Result<(), E> {
                Ok(())
            }
            fn visit_f64<E>(self, _: f64) -> Result<(), E> {
                Ok(())
            }
            fn visit_str<E>(self, _: &str) -> Result<(), E> {
                Ok(())
            }
            fn visit_unit<E>(self) -> Result<(), E> {
                Ok(())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
                while seq.next_element_seed(Walk(self.0))?.is_some() {}
                Ok(())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
                let mut seen = HashSet::new();
                while let Some(k) = map.next_key::<String>()? {
                    if !seen.insert(k.clone()) {
                        *self.0.borrow_mut() = Some(k);
                        return Err(de::Error::custom("dup"));
                    }
                    map.next_value_seed(Walk(self.0))?;
                }
                Ok(())
            }
        }
        let found = RefCell::new(None);
        let _ = Walk(&found).deserialize(&mut serde_json::Deserializer::from_slice(json));
        found.into_inner()
    }

    /// JSON text with objects whose keys come in any order and may repeat
    /// (a key drawn from a tiny alphabet, some written as escapes).
    fn json_text() -> impl Strategy<Value = String> {
        let key = ("[a-c\\\\\"]{0,2}", any::<bool>()).prop_map(|(k, esc)| {
            if esc {
                let body: String = k.chars().map(|c| format!("\\u{:04x}", c as u32)).collect();
                format!("\"{body}\"")
            } else {
                serde_json::to_string(&k).unwrap()
            }
        });
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            "[a-c\\\\\"{}\\[\\],:]{0,4}".prop_map(|t| serde_json::to_string(&t).unwrap()),
        ];
        leaf.prop_recursive(4, 40, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                    let body: Vec<String> =
                        kv.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{{}}}", body.join(", "))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The scanner agrees with the serde walk on any JSON: keys in any
        /// order, repeated or not, escaped or not.
        #[test]
        fn scanner_agrees_with_serde(text in json_text()) {
            prop_assert_eq!(dup(&text).map(|d| d.key), oracle(text.as_bytes()));
        }
    }
}
