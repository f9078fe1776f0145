//! Resolving what a caller typed (an ID, a name, a unique ID prefix) to a
//! record, over a fully parsed state or over its index.

use crate::error::{Error, Result};
use crate::state::{StateFile, StateIndex};

/// What a reference names: a usable container, or a damaged record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Found {
    Container(String),
    Damaged(String),
}

/// The questions resolution asks of a set of records.
pub(super) trait Records {
    /// Whether `key` is a usable container.
    fn is_container(&self, key: &str) -> bool;
    /// Whether `key` is a damaged record.
    fn is_damaged(&self, key: &str) -> bool;
    /// IDs of usable containers called `name`.
    fn named(&self, name: &str) -> Vec<String>;
    /// Keys starting with `prefix`: usable ones, then damaged ones.
    fn prefixed(&self, prefix: &str) -> (Vec<String>, Vec<String>);
    /// `(id, name)` of usable containers whose name starts with `prefix`.
    fn name_prefixed(&self, prefix: &str) -> Vec<(String, String)>;
}

impl Records for StateFile {
    fn is_container(&self, key: &str) -> bool {
        self.containers.contains_key(key)
    }
    fn is_damaged(&self, key: &str) -> bool {
        self.damaged.contains_key(key)
    }
    fn named(&self, name: &str) -> Vec<String> {
        self.containers
            .values()
            .filter(|c| c.name == name)
            .map(|c| c.id.clone())
            .collect()
    }
    fn prefixed(&self, prefix: &str) -> (Vec<String>, Vec<String>) {
        // Keys are sorted, so those with the prefix are one range.
        let range = |keys: &mut dyn Iterator<Item = &String>| -> Vec<String> {
            keys.take_while(|k| k.starts_with(prefix))
                .cloned()
                .collect()
        };
        (
            range(&mut self.containers.range(prefix.to_string()..).map(|(k, _)| k)),
            range(&mut self.damaged.range(prefix.to_string()..).map(|(k, _)| k)),
        )
    }
    fn name_prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.containers
            .values()
            .filter(|c| c.name.starts_with(prefix))
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect()
    }
}

impl Records for StateIndex {
    fn is_container(&self, key: &str) -> bool {
        self.get(key).is_some_and(|e| e.problem.is_none())
    }
    fn is_damaged(&self, key: &str) -> bool {
        self.get(key).is_some_and(|e| e.problem.is_some())
    }
    fn named(&self, name: &str) -> Vec<String> {
        self.entries()
            .iter()
            .filter(|e| e.problem.is_none() && e.name.as_deref() == Some(name))
            .map(|e| e.key.clone())
            .collect()
    }
    fn prefixed(&self, prefix: &str) -> (Vec<String>, Vec<String>) {
        let (good, bad): (Vec<_>, Vec<_>) = self
            .with_prefix(prefix)
            .iter()
            .partition(|e| e.problem.is_none());
        (
            good.into_iter().map(|e| e.key.clone()).collect(),
            bad.into_iter().map(|e| e.key.clone()).collect(),
        )
    }
    fn name_prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        self.entries()
            .iter()
            .filter(|e| e.problem.is_none())
            .filter_map(|e| {
                let name = e.name.as_deref().filter(|n| n.starts_with(prefix))?;
                Some((e.key.clone(), name.to_string()))
            })
            .collect()
    }
}

/// An exact ID wins, then an exact name, then a unique ID prefix, then (as
/// go-container allowed) a unique name prefix. A name prefix matching
/// several containers is an error listing them as `ID (NAME)`. Damaged
/// records are found by key or prefix, never by name.
pub(super) fn resolve_in(st: &impl Records, reference: &str) -> Result<Found> {
    if reference.is_empty() {
        return Err(Error::invalid(
            "container reference",
            "",
            "must not be empty",
        ));
    }
    if st.is_container(reference) {
        return Ok(Found::Container(reference.to_string()));
    }
    if st.is_damaged(reference) {
        return Ok(Found::Damaged(reference.to_string()));
    }
    let by_name = st.named(reference);
    if let [id] = by_name.as_slice() {
        return Ok(Found::Container(id.clone()));
    }
    let (good, bad) = st.prefixed(reference);
    match (good.len(), bad.len()) {
        (1, 0) => Ok(Found::Container(good[0].clone())),
        (0, 1) => Ok(Found::Damaged(bad[0].clone())),
        (0, 0) if by_name.len() > 1 => Err(Error::Ambiguous {
            query: reference.into(),
            matches: by_name,
        }),
        (0, 0) => by_name_prefix(st, reference),
        _ => Err(Error::Ambiguous {
            query: reference.into(),
            matches: good.into_iter().chain(bad).collect(),
        }),
    }
}

/// The last resort: a unique name prefix.
fn by_name_prefix(st: &impl Records, reference: &str) -> Result<Found> {
    let mut hits = st.name_prefixed(reference);
    match hits.len() {
        0 => Err(Error::NotFound(reference.to_string())),
        1 => Ok(Found::Container(hits.remove(0).0)),
        _ => {
            hits.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            Err(Error::Ambiguous {
                query: reference.into(),
                matches: hits
                    .into_iter()
                    .map(|(id, name)| format!("{id} ({name})"))
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::Container;

    fn rec(id: &str, name: &str) -> Container {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "image": "/x.iso", "status": "stopped",
            "pid": 0, "started_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    fn check(st: &impl Records) {
        let c = |id: &str| Found::Container(id.to_string());
        assert_eq!(resolve_in(st, "abc12345").unwrap(), c("abc12345"));
        assert_eq!(resolve_in(st, "web").unwrap(), c("abc12345"));
        // A name beats a prefix.
        assert_eq!(resolve_in(st, "abc").unwrap(), c("ffff0000"));
        assert_eq!(resolve_in(st, "abd").unwrap(), c("abd00000"));
        let amb = resolve_in(st, "ab").unwrap_err();
        assert!(matches!(amb, Error::Ambiguous { .. }), "{amb}");
        assert!(amb.to_string().contains("abc12345") && amb.to_string().contains("abd00000"));
        assert!(matches!(
            resolve_in(st, "zz").unwrap_err(),
            Error::NotFound(_)
        ));
        // Damaged records are found by key or prefix, never by name.
        let d = Found::Damaged("../../x".into());
        assert_eq!(resolve_in(st, "../../x").unwrap(), d);
        assert_eq!(resolve_in(st, "../").unwrap(), d);
        assert!(matches!(resolve_in(st, "evil"), Err(Error::NotFound(_))));
        // Nothing else matching, a unique name prefix does (go-container).
        assert_eq!(resolve_in(st, "we").unwrap(), c("abc12345"));
        assert_eq!(resolve_in(st, "db-").unwrap(), c("0000beef"));
        // An ID prefix beats a name prefix.
        assert_eq!(resolve_in(st, "f").unwrap(), c("ffff0000"));
        let amb = resolve_in(st, "d").unwrap_err();
        assert!(matches!(amb, Error::Ambiguous { .. }), "{amb}");
        let msg = amb.to_string();
        assert!(
            msg.contains("abd00000 (db)") && msg.contains("0000beef (db-2)"),
            "{msg}"
        );
    }

    #[test]
    fn resolution_by_id_name_and_prefix_over_file_and_index() {
        let mut st = StateFile::default();
        for (id, name) in [
            ("abc12345", "web"),
            ("abd00000", "db"),
            ("ffff0000", "abc"),
            ("0000beef", "db-2"),
        ] {
            st.containers.insert(id.into(), rec(id, name));
        }
        st.damaged.insert(
            "../../x".into(),
            crate::state::DamagedRecord {
                reason: "bad".into(),
                raw: serde_json::json!({"id": "../../x", "name": "evil"}),
            },
        );
        check(&st);
        let index = StateIndex::build(st.to_json()).unwrap();
        check(&index);
    }
}
