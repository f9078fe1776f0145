//! The text of `containers.json`: parsing it without losing or trusting
//! what should not be, and writing it back.
//!
//! Reading goes in three steps, sized for 100,000 records: the file is
//! scanned for repeated keys (on its own thread), split into raw records,
//! and the records are parsed in parallel. A record that does not parse,
//! or whose key is not a valid ID or differs from its `id`, is kept aside
//! as damaged instead of failing the whole file.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::container::Container;
use crate::error::shown;
use crate::id::is_valid_id;

/// A record that cannot be used, kept verbatim so that writing the file
/// never drops it. Nothing but removal touches it, and removal deletes no
/// file on its behalf unless its key is a valid ID.
#[derive(Debug, Clone, PartialEq)]
pub struct DamagedRecord {
    /// Why it cannot be used.
    pub reason: String,
    /// The record as stored.
    pub raw: serde_json::Value,
}

/// The whole file: `{"containers": {"<id>": Container}}` plus any other
/// top-level fields, kept verbatim.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateFile {
    /// Containers by ID.
    pub containers: BTreeMap<String, Container>,
    /// Records that cannot be used, by key (see [`DamagedRecord`]). They are
    /// written back inside `containers`.
    pub damaged: BTreeMap<String, DamagedRecord>,
    /// Unknown top-level fields.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// Below this many records one thread parses them all.
const PARALLEL_FROM: usize = 4096;
/// Below this size the duplicate-key scan runs before the split instead of
/// beside it (a thread costs more than scanning a small file).
const SCAN_BESIDE_FROM: usize = 1 << 20;

impl StateFile {
    /// Parses the text of a state file. A key repeated in any object is an
    /// error (a JSON reader would silently keep one of the two); a record
    /// that cannot be used lands in [`StateFile::damaged`] instead of
    /// failing the whole file. `Err` is why the file cannot be read.
    pub fn from_json(bytes: &[u8]) -> Result<StateFile, String> {
        Ok(Split::checked(bytes)?.into_state())
    }

    /// The text written to disk (pretty JSON and a final newline).
    pub fn to_json(&self) -> Vec<u8> {
        let mut json = serde_json::to_vec_pretty(self).expect("a state file always serializes");
        json.push(b'\n');
        json
    }
}

/// Why a record under `key` cannot be used although it parsed, if so.
pub(super) fn id_problem(key: &str, id: &str) -> Option<String> {
    if !is_valid_id(key) {
        Some("its key is not an ID of 8 lowercase hex characters".to_string())
    } else if id != key {
        Some(format!("its id {:?} differs from its key", shown(id)))
    } else {
        None
    }
}

/// The file split into records that are not parsed yet.
pub(super) struct Split<'a> {
    /// Keys and raw records in file order.
    pub records: Vec<(Cow<'a, str>, &'a RawValue)>,
    /// Top-level fields other than `containers`.
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl<'a> Split<'a> {
    /// Checks the syntax of the whole file and splits it.
    pub fn parse(bytes: &'a [u8]) -> Result<Split<'a>, String> {
        serde_json::from_slice(bytes).map_err(|e| {
            format!(
                "invalid JSON at line {} column {}: {e}",
                e.line(),
                e.column()
            )
        })
    }

    /// [`Split::parse`], with the file also scanned for repeated keys (on
    /// another thread when it is large).
    pub fn checked(bytes: &'a [u8]) -> Result<Split<'a>, String> {
        let scan = || crate::json_keys::find_duplicate_key(bytes);
        let (split, dup) = if bytes.len() < SCAN_BESIDE_FROM {
            let dup = scan();
            (Split::parse(bytes), dup)
        } else {
            std::thread::scope(|s| {
                let dup = s.spawn(scan);
                let split = Split::parse(bytes);
                (
                    split,
                    dup.join().expect("the duplicate-key scan does not panic"),
                )
            })
        };
        let split = split?;
        match dup {
            Some(dup) => Err(dup.to_string()),
            None => Ok(split),
        }
    }

    fn into_state(self) -> StateFile {
        let (containers, damaged, extra) = self.into_records();
        // Usable records' keys are their IDs, unique (the scan refuses
        // repeats); a BTreeMap built from a sorted vector is one pass
        // instead of a search per insert.
        StateFile {
            containers: containers.into_iter().map(|c| (c.id.clone(), c)).collect(),
            damaged,
            extra,
        }
    }

    /// Parses the records: the usable ones in file order (each key is its
    /// record's ID), the damaged ones aside, and the other top-level
    /// fields.
    pub fn into_records(self) -> Records3 {
        let (mut slots, failed) = parse_records(&self.records);
        let mut damaged = BTreeMap::new();
        for (i, reason) in failed {
            let (key, raw) = &self.records[i];
            let raw = serde_json::from_str(raw.get()).unwrap_or_default();
            damaged.insert(key.to_string(), DamagedRecord { reason, raw });
        }
        for (slot, (key, _)) in slots.iter_mut().zip(&self.records) {
            let Some(c) = slot else { continue };
            if let Some(reason) = id_problem(key, &c.id) {
                let raw = serde_json::to_value(&*c).unwrap_or_default();
                damaged.insert(key.to_string(), DamagedRecord { reason, raw });
                *slot = None;
            }
        }
        // Option<Container> is as large as Container, so collecting through
        // `filter_map` reuses the vector's memory (`flatten` does not: it
        // grew a new vector by doubling, copying 100,000 records (~50 MB)
        // several times, and a list of 1,000 faulted in ~900 KB of fresh
        // pages per call).
        #[allow(clippy::filter_map_identity)]
        let containers = slots.into_iter().filter_map(|c| c).collect();
        (containers, damaged, self.extra)
    }
}

/// What [`Split::into_records`] returns: usable records, damaged ones by
/// key, other top-level fields.
pub(super) type Records3 = (
    Vec<Container>,
    BTreeMap<String, DamagedRecord>,
    serde_json::Map<String, serde_json::Value>,
);

/// Parses each raw record, on several threads when there are many. The
/// threads fill one vector (records are large: no per-thread copies).
/// Returns a slot per record (`None` where parsing failed) and the
/// failures by index.
fn parse_records(
    records: &[(Cow<'_, str>, &RawValue)],
) -> (Vec<Option<Container>>, Vec<(usize, String)>) {
    fn parse(
        slots: &mut [Option<Container>],
        chunk: &[(Cow<'_, str>, &RawValue)],
        first: usize,
    ) -> Vec<(usize, String)> {
        let mut failed = Vec::new();
        for (i, (slot, (_, raw))) in slots.iter_mut().zip(chunk).enumerate() {
            match serde_json::from_str::<Container>(raw.get()) {
                Ok(c) => *slot = Some(c),
                Err(e) => failed.push((first + i, e.to_string())),
            }
        }
        failed
    }
    let mut slots: Vec<Option<Container>> = Vec::with_capacity(records.len());
    slots.resize_with(records.len(), || None);
    let threads = std::thread::available_parallelism()
        .map(|n| n.get().min(4))
        .unwrap_or(1);
    if threads < 2 || records.len() < PARALLEL_FROM {
        let failed = parse(&mut slots, records, 0);
        return (slots, failed);
    }
    let size = records.len().div_ceil(threads);
    let failed = std::thread::scope(|s| {
        let handles: Vec<_> = slots
            .chunks_mut(size)
            .zip(records.chunks(size))
            .enumerate()
            .map(|(n, (part, chunk))| s.spawn(move || parse(part, chunk, n * size)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("parsing a record does not panic"))
            .collect()
    });
    (slots, failed)
}

impl<'de: 'a, 'a> Deserialize<'de> for Split<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> Visitor<'de> for Top {
            type Value = Split<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"an object {"containers": {...}}"#)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Split<'de>, A::Error> {
                let mut split = Split {
                    records: Vec::new(),
                    extra: serde_json::Map::new(),
                };
                while let Some(key) = map.next_key::<String>()? {
                    if key == "containers" {
                        let recs: Option<Records<'de>> = map.next_value()?;
                        split.records = recs.map(|r| r.0).unwrap_or_default();
                    } else {
                        let v = map.next_value()?;
                        split.extra.insert(key, v);
                    }
                }
                Ok(split)
            }
        }
        d.deserialize_map(Top)
    }
}

/// The `containers` object as raw records in file order.
struct Records<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

/// A key borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a container key")
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

impl<'de: 'a, 'a> Deserialize<'de> for Records<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Records<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of containers by ID")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Records<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((k, v)) = map.next_entry::<Key<'de>, &'de RawValue>()? {
                    out.push((k.0, v));
                }
                Ok(Records(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for StateFile {
    /// Parses without the duplicate-key check, keeping damaged records
    /// aside like [`StateFile::from_json`] (which files should use).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let text = serde_json::to_vec(&value).map_err(de::Error::custom)?;
        let split = Split::parse(&text).map_err(de::Error::custom)?;
        Ok(split.into_state())
    }
}

impl Serialize for StateFile {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// Both kinds of record, merged in key order.
        struct All<'a>(&'a StateFile);
        impl Serialize for All<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let total = self.0.containers.len() + self.0.damaged.len();
                let mut m = s.serialize_map(Some(total))?;
                let mut good = self.0.containers.iter().peekable();
                let mut bad = self.0.damaged.iter().peekable();
                loop {
                    let take_good = match (good.peek(), bad.peek()) {
                        (Some((g, _)), Some((b, _))) => g < b,
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (None, None) => break,
                    };
                    if take_good {
                        let (k, c) = good.next().expect("peeked");
                        m.serialize_entry(k, c)?;
                    } else {
                        let (k, d) = bad.next().expect("peeked");
                        m.serialize_entry(k, &d.raw)?;
                    }
                }
                m.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("containers", &All(self))?;
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The usable records come back in the parse's own vector: a copy
    /// grown by doubling (as `flatten` made) costs 100,000 records ~50 MB
    /// several times over and leaves a capacity other than the record
    /// count.
    #[test]
    fn usable_records_reuse_the_parsed_vector() {
        let n = 1000;
        let records: Vec<String> = (0..n)
            .map(|i| {
                let key = format!("{i:08x}");
                // Every 100th record's id differs from its key: damaged.
                let id = if i % 100 == 7 { "ffffffff".to_string() } else { key.clone() };
                format!(
                    r#""{key}": {{"id": "{id}", "image": "/i.iso", "status": "stopped", "pid": 0, "started_at": "2025-01-01T00:00:00Z"}}"#
                )
            })
            .collect();
        let text = format!(r#"{{"containers": {{{}}}}}"#, records.join(","));
        let (containers, damaged, _) = Split::checked(text.as_bytes()).unwrap().into_records();
        assert_eq!(damaged.len(), 10);
        assert_eq!(containers.len(), n - 10);
        assert_eq!(containers.capacity(), n);
        assert_eq!(containers[0].id, "00000000");
        assert_eq!(containers[7].id, "00000008");
    }
}
