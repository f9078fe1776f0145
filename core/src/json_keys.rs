//! Duplicate object keys in JSON text.
//!
//! serde_json, like most JSON readers, keeps the last of two equal keys in
//! an object and drops the other without a word. In the state file that
//! silently loses a container (and hides its VM); in the image manifest an
//! installed image. Files we must not misread are walked once with
//! [`find_duplicate_key`] before they are parsed.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

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

/// Walks `json` and returns the first key repeated within one object, or
/// a syntax error (with its line and column) if `json` is not JSON.
pub fn find_duplicate_key(json: &[u8]) -> Result<Option<DuplicateKey>, serde_json::Error> {
    let found = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(json);
    let walked = Walk { found: &found }.deserialize(&mut de);
    if let Some(dup) = found.into_inner() {
        return Ok(Some(dup));
    }
    walked?;
    de.end()?;
    Ok(None)
}

/// A key borrowed from the input when it has no escapes.
#[derive(PartialEq, Eq, Hash)]
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Objects up to this size are checked by a linear scan (the common case:
/// a record's dozen fields); larger ones through a hash set.
const LINEAR: usize = 16;

struct Walk<'a> {
    found: &'a RefCell<Option<DuplicateKey>>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl Walk<'_> {
    /// Adds the key or index under which a duplicate was found below.
    fn prefix(&self, part: impl FnOnce() -> String) {
        if let Some(dup) = self.found.borrow_mut().as_mut() {
            dup.path.insert(0, part());
        }
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
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
        let mut i = 0usize;
        loop {
            match seq.next_element_seed(Walk { found: self.found }) {
                Ok(Some(())) => i += 1,
                Ok(None) => return Ok(()),
                Err(e) => {
                    self.prefix(|| i.to_string());
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut small: Vec<Key<'de>> = Vec::new();
        let mut large: HashSet<Key<'de>> = HashSet::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let seen = if large.is_empty() {
                small.contains(&key)
            } else {
                large.contains(&key)
            };
            if seen {
                *self.found.borrow_mut() = Some(DuplicateKey {
                    path: Vec::new(),
                    key: key.0.into_owned(),
                });
                return Err(de::Error::custom("duplicate key"));
            }
            if let Err(e) = map.next_value_seed(Walk { found: self.found }) {
                self.prefix(|| key.0.clone().into_owned());
                return Err(e);
            }
            if large.is_empty() && small.len() < LINEAR {
                small.push(key);
            } else {
                large.extend(small.drain(..));
                large.insert(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(json: &str) -> Option<DuplicateKey> {
        find_duplicate_key(json.as_bytes()).unwrap()
    }

    #[test]
    fn finds_repeats_at_any_depth_and_names_where() {
        assert_eq!(dup(r#"{"a": 1, "b": [1, {"c": 2}]}"#), None);
        let d = dup(r#"{"a": 1, "a": 2}"#).unwrap();
        assert_eq!(d.to_string(), r#"duplicate key "a" in the top-level object"#);
        let d = dup(r#"{"containers": {"x": {"ports": {"80": 1, "81": 2, "80": 3}}}}"#).unwrap();
        assert_eq!(d.path, ["containers", "x", "ports"]);
        assert_eq!(d.key, "80");
        assert!(d.to_string().contains("containers.x.ports"), "{d}");
        let d = dup(r#"[0, {"k": [{"z": 1, "z": 1}]}]"#).unwrap();
        assert_eq!(d.path, ["1", "k", "0"]);
        // Escapes are decoded before comparing: "\u0061" is "a".
        assert_eq!(dup(r#"{"a": 1, "\u0061": 2}"#).unwrap().key, "a");
    }

    #[test]
    fn large_objects_switch_to_a_set() {
        let mut keys: Vec<String> = (0..1000).map(|i| format!("\"k{i}\": {i}")).collect();
        let ok = format!("{{{}}}", keys.join(","));
        assert_eq!(dup(&ok), None);
        keys.push("\"k500\": 0".into());
        let bad = format!("{{{}}}", keys.join(","));
        assert_eq!(dup(&bad).unwrap().key, "k500");
    }

    #[test]
    fn syntax_errors_are_errors() {
        let e = find_duplicate_key(b"{\"a\": tru").unwrap_err();
        assert!(e.line() == 1, "{e}");
        assert!(find_duplicate_key(b"{} {}").is_err());
    }
}
