//! A quick view of `containers.json` for finding one container.
//!
//! Most commands need one record: `inspect ID`, `stop NAME`, `rm PREFIX`,
//! and every "not found". Parsing all of a 100,000-record file for that
//! costs far more than reading it, so the index keeps the text, each
//! record's key, `id` and `name`, and where the record is, and parses a
//! record only when asked for it. The file is checked just as for a full
//! load: its syntax, and repeated keys.

use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;

use super::file::{id_problem, Split};
use crate::container::Container;

/// One record as the index knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    /// Its key in `containers`.
    pub key: String,
    /// Its `name`, when it has one.
    pub name: Option<String>,
    /// Why it cannot be used (an invalid or mismatched ID, an unreadable
    /// `id` or `name`); `None` when nothing is known against it.
    pub problem: Option<String>,
    span: Range<usize>,
}

/// Keys, names and the text of every record (see the module docs).
#[derive(Debug, Clone)]
pub struct StateIndex {
    bytes: Vec<u8>,
    /// Sorted by key.
    entries: Vec<IndexEntry>,
}

/// The two fields the index reads; the rest of a record is skipped.
#[derive(Deserialize)]
struct Lite<'a> {
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

impl StateIndex {
    /// An index of the text `bytes` (empty text: no records).
    pub fn build(bytes: Vec<u8>) -> Result<StateIndex, String> {
        if bytes.is_empty() {
            return Ok(StateIndex {
                bytes,
                entries: Vec::new(),
            });
        }
        let entries = {
            let split = Split::checked(&bytes)?;
            let base = bytes.as_ptr() as usize;
            let mut entries: Vec<IndexEntry> = split
                .records
                .iter()
                .map(|(key, raw)| {
                    let text = raw.get();
                    let start = text.as_ptr() as usize - base;
                    let (name, problem) = match serde_json::from_str::<Lite>(text) {
                        Ok(l) => (
                            l.name.map(Cow::into_owned),
                            id_problem(key, l.id.as_deref().unwrap_or_default()),
                        ),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    IndexEntry {
                        key: key.to_string(),
                        name,
                        problem,
                        span: start..start + text.len(),
                    }
                })
                .collect();
            entries.sort_by(|a, b| a.key.cmp(&b.key));
            entries
        };
        Ok(StateIndex { bytes, entries })
    }

    /// Every record, sorted by key.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// The record with key `key`.
    pub fn get(&self, key: &str) -> Option<&IndexEntry> {
        self.entries
            .binary_search_by(|e| e.key.as_str().cmp(key))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The records whose keys start with `prefix`.
    pub fn with_prefix(&self, prefix: &str) -> &[IndexEntry] {
        let start = self.entries.partition_point(|e| e.key.as_str() < prefix);
        let len = self.entries[start..]
            .iter()
            .take_while(|e| e.key.starts_with(prefix))
            .count();
        &self.entries[start..start + len]
    }

    /// Parses the record `key`; `Err` says why it cannot be used.
    pub fn container(&self, key: &str) -> Option<Result<Container, String>> {
        let e = self.get(key)?;
        if let Some(p) = &e.problem {
            return Some(Err(p.clone()));
        }
        let text = &self.bytes[e.span.clone()];
        Some(serde_json::from_slice::<Container>(text).map_err(|err| err.to_string()))
    }

    /// The record `key` as generic JSON.
    pub fn raw(&self, key: &str) -> Option<serde_json::Value> {
        let e = self.get(key)?;
        serde_json::from_slice(&self.bytes[e.span.clone()]).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_records_without_parsing_them_all() {
        let text = serde_json::json!({"containers": {
            "0b0b0b0b": {"id": "0b0b0b0b", "name": "web", "image": "/i", "status": "stopped", "started_at": "2025-01-01T00:00:00Z"},
            "0a0a0a0a": {"id": "0a0a0a0a", "name": null, "image": "/i", "status": "future", "started_at": "2025-01-01T00:00:00Z"},
            "0c0c0c0c": {"id": "ffffffff"},
            "../x": {"id": "../x"},
            "0d0d0d0d": {"id": "0d0d0d0d", "name": "broken"},
        }})
        .to_string();
        let ix = StateIndex::build(text.into_bytes()).unwrap();
        let keys: Vec<&str> = ix.entries().iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            ["../x", "0a0a0a0a", "0b0b0b0b", "0c0c0c0c", "0d0d0d0d"]
        );
        assert_eq!(ix.get("0b0b0b0b").unwrap().name.as_deref(), Some("web"));
        assert_eq!(ix.get("0a0a0a0a").unwrap().name, None);
        let c = ix.container("0a0a0a0a").unwrap().unwrap();
        assert_eq!(c.status.as_str(), "future");
        assert!(ix
            .get("0c0c0c0c")
            .unwrap()
            .problem
            .as_ref()
            .unwrap()
            .contains("differs"));
        assert!(ix
            .get("../x")
            .unwrap()
            .problem
            .as_ref()
            .unwrap()
            .contains("8 lowercase"));
        // Damage the index cannot see shows when the record is parsed.
        assert!(ix
            .container("0d0d0d0d")
            .unwrap()
            .unwrap_err()
            .contains("missing field"));
        assert_eq!(ix.with_prefix("0").len(), 4);
        assert_eq!(ix.with_prefix("0b").len(), 1);
        assert!(ix.with_prefix("z").is_empty());
        assert!(ix.container("nope").is_none());
        // The same checks as a full load.
        assert!(
            StateIndex::build(b"{\"containers\": {\"a\": 1, \"a\": 2}}".to_vec())
                .unwrap_err()
                .contains("duplicate")
        );
        assert!(StateIndex::build(b"{\"containers\": {".to_vec())
            .unwrap_err()
            .contains("line 1"));
    }
}
