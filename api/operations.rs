//! Reads `api/operations.toml` for the Rust parity tests (core, CLI, C
//! header), which include this file with `#[path]`. The file is kept to a
//! small subset of TOML so that the Python, Node and Go tests read it
//! without a TOML library; [`load`] rejects anything outside that subset,
//! so a line that one face's reader would misread fails here first.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The faces every operation names.
pub const FACES: [&str; 6] = ["rust", "cli", "c", "python", "node", "go"];

/// One `[op.NAME]` table.
#[derive(Debug, Clone, Default)]
pub struct Operation {
    /// `NAME`.
    pub name: String,
    /// Key → value, as written.
    pub fields: BTreeMap<String, String>,
}

impl Operation {
    /// The names `face` gives this operation; empty when it is `none: ...`.
    pub fn names(&self, face: &str) -> Vec<String> {
        match self.fields.get(face) {
            Some(v) if !is_none(v) => v.split(',').map(|s| s.trim().to_string()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Whether a face value says the face does not offer the operation.
pub fn is_none(value: &str) -> bool {
    value.starts_with("none:")
}

/// The parsed list.
#[derive(Debug, Clone, Default)]
pub struct Operations {
    /// The operations, in file order.
    pub ops: Vec<Operation>,
    /// `[internal]`: core item → why it is not an operation.
    pub internal: BTreeMap<String, String>,
}

/// `api/operations.toml` from the repository root.
pub fn path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("api")
        .join("operations.toml")
}

/// Reads and checks the file: the subset of TOML, and every operation
/// naming each face with a name or `none: WHY`.
pub fn load() -> Operations {
    let p = path();
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    parse(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Parses the text of the file.
pub fn parse(text: &str) -> Result<Operations, String> {
    enum Section {
        None,
        Op(usize),
        Internal,
    }
    let mut out = Operations::default();
    let mut section = Section::None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = || format!("line {}: {raw:?}", i + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = if header == "internal" {
                Section::Internal
            } else if let Some(name) = header.strip_prefix("op.") {
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                {
                    return Err(format!("{}: operation names are [a-z0-9_]+", at()));
                }
                if out.ops.iter().any(|o| o.name == name) {
                    return Err(format!("{}: operation {name} is listed twice", at()));
                }
                out.ops.push(Operation {
                    name: name.to_string(),
                    ..Default::default()
                });
                Section::Op(out.ops.len() - 1)
            } else {
                return Err(format!("{}: expected [op.NAME] or [internal]", at()));
            };
            continue;
        }
        let (key, value) = line
            .split_once(" = ")
            .ok_or_else(|| format!("{}: expected key = \"value\"", at()))?;
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"') && !v.contains('\\') && !v.trim().is_empty())
            .ok_or_else(|| {
                format!(
                    "{}: the value must be a non-empty \"string\" without \" or \\",
                    at()
                )
            })?;
        match section {
            Section::None => return Err(format!("{}: key outside a table", at())),
            Section::Internal => {
                let key = key
                    .strip_prefix('"')
                    .and_then(|k| k.strip_suffix('"'))
                    .ok_or_else(|| format!("{}: [internal] keys are \"quoted\"", at()))?;
                out.internal.insert(key.to_string(), value.to_string());
            }
            Section::Op(n) => {
                if !FACES.contains(&key) && key != "note" {
                    return Err(format!(
                        "{}: unknown key {key} (expected {} or note)",
                        at(),
                        FACES.join(", ")
                    ));
                }
                if out.ops[n]
                    .fields
                    .insert(key.to_string(), value.to_string())
                    .is_some()
                {
                    return Err(format!("{}: {key} is given twice", at()));
                }
                if is_none(value) && value["none:".len()..].trim().is_empty() {
                    return Err(format!("{}: `none:` must say why", at()));
                }
            }
        }
    }
    for op in &out.ops {
        for face in FACES {
            if !op.fields.contains_key(face) {
                return Err(format!(
                    "[op.{}] has no {face} = \"...\" (a name, or none: WHY)",
                    op.name
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn the_subset_is_enforced() {
        let good = "# c\n[op.x]\nrust = \"a::b\"\ncli = \"none: why\"\nc = \"f\"\npython = \"p\"\nnode = \"n\"\ngo = \"G\"\n[internal]\n\"a::c\" = \"because\"\n";
        let ops = parse(good).unwrap();
        assert_eq!(ops.ops[0].names("rust"), ["a::b"]);
        assert!(ops.ops[0].names("cli").is_empty());
        assert_eq!(ops.internal["a::c"], "because");
        for bad in [
            "[op.x]\nrust = 'a'\n",
            "[op.X]\n",
            "[ops.x]\n",
            "rust = \"a\"\n",
            "[op.x]\nrust = \"a\"\n",
            "[op.x]\nweb = \"a\"\n",
            &good.replace("none: why", "none:"),
            &good.replace("\"f\"", "\"f \\\" g\""),
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
