//! Every C name in `api/operations.toml` is declared in the committed
//! header, include/vmcontainer.h.

#[path = "../../api/operations.rs"]
mod operations;

use std::collections::BTreeSet;

/// The functions the header declares: identifiers `vmc_*` followed by `(`
/// outside comments.
fn declared() -> BTreeSet<String> {
    let header = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../include/vmcontainer.h");
    let text = std::fs::read_to_string(&header).unwrap();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("/*") || t.starts_with('*') || t.starts_with("//") {
            continue;
        }
        let mut rest = t;
        while let Some(i) = rest.find("vmc_") {
            let tail = &rest[i..];
            let len = tail
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            if tail[len..].starts_with('(') {
                out.insert(tail[..len].to_string());
            }
            rest = &tail[len..];
        }
    }
    out
}

#[test]
fn every_listed_c_function_is_in_the_header() {
    let ops = operations::load();
    let declared = declared();
    assert!(declared.contains("vmc_manager_run"), "{declared:?}");
    let missing: Vec<String> = ops
        .ops
        .iter()
        .flat_map(|op| op.names("c").into_iter().map(move |n| (op, n)))
        .filter(|(_, n)| !declared.contains(n))
        .map(|(op, n)| format!("{n} ([op.{}])", op.name))
        .collect();
    assert!(
        missing.is_empty(),
        "api/operations.toml names C functions include/vmcontainer.h lacks: {missing:?}"
    );
}
