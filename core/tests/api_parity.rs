//! Every public operation of the core is in `api/operations.toml`, and
//! every core item the list names exists. Adding a method to
//! `LinuxKitManager` (or the other types below) without listing it, with
//! each face's name or `none: WHY`, fails here. See api/README.md.

#[path = "../../api/operations.rs"]
mod operations;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use syn::{ImplItem, Item, TraitItem, Type, Visibility};

/// Modules whose public free functions are operations (or listed as
/// internal).
const FUNCTION_MODULES: [&str; 7] = [
    "templates",
    "devenv::detect",
    "devenv::test_config",
    "devenv::images",
    "id",
    "image",
    "hypervisor",
];

/// The module path of a source file under `core/src`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The name an `impl` block's methods are listed under, if they are
/// operations: `LinuxKitManager::f`, `blocking::Manager::f`, `DevOps::f`,
/// `devenv::blocking::DevOps::f`, `CancelToken::f`.
fn impl_prefix(module: &str, ty: &str) -> Option<String> {
    match (module, ty) {
        (_, "LinuxKitManager" | "CancelToken") => Some(ty.to_string()),
        ("blocking", "Manager") => Some("blocking::Manager".into()),
        ("devenv::blocking", "DevOps") => Some("devenv::blocking::DevOps".into()),
        (m, "DevOps") if m.starts_with("devenv") => Some("DevOps".into()),
        _ => None,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every public core item that must be in the list.
fn core_items() -> BTreeSet<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut items = BTreeSet::new();
    for file in files {
        let module = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).unwrap();
        let parsed = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for item in parsed.items {
            match item {
                Item::Impl(imp) if imp.trait_.is_none() => {
                    let Type::Path(p) = imp.self_ty.as_ref() else {
                        continue;
                    };
                    let ty = p.path.segments.last().unwrap().ident.to_string();
                    let Some(prefix) = impl_prefix(&module, &ty) else {
                        continue;
                    };
                    for it in imp.items {
                        if let ImplItem::Fn(f) = it {
                            if matches!(f.vis, Visibility::Public(_)) {
                                items.insert(format!("{prefix}::{}", f.sig.ident));
                            }
                        }
                    }
                }
                Item::Trait(t) if t.ident == "Hypervisor" && module == "hypervisor" => {
                    for it in t.items {
                        if let TraitItem::Fn(f) = it {
                            items.insert(format!("Hypervisor::{}", f.sig.ident));
                        }
                    }
                }
                Item::Fn(f)
                    if FUNCTION_MODULES.contains(&module.as_str())
                        && matches!(f.vis, Visibility::Public(_)) =>
                {
                    items.insert(format!("{module}::{}", f.sig.ident));
                }
                _ => {}
            }
        }
    }
    items
}

#[test]
fn every_core_operation_is_listed_and_every_listed_item_exists() {
    let ops = operations::load();
    let items = core_items();
    assert!(
        items.contains("LinuxKitManager::run") && items.contains("devenv::blocking::DevOps::boot"),
        "the scan found too little: {items:?}"
    );
    let mut listed = BTreeSet::new();
    for op in &ops.ops {
        for name in op.names("rust") {
            assert!(
                listed.insert(name.clone()),
                "{name} is listed twice (again in [op.{}])",
                op.name
            );
        }
    }
    for name in ops.internal.keys() {
        assert!(listed.insert(name.clone()), "{name} is listed twice");
    }
    let missing: Vec<_> = items.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "public core items missing from api/operations.toml: {missing:?}\n\
         Add each to an [op.NAME] table with its name in every face (or \
         `none: WHY`), or to [internal] with a reason. See api/README.md."
    );
    let stale: Vec<_> = listed.difference(&items).collect();
    assert!(
        stale.is_empty(),
        "api/operations.toml names core items that do not exist: {stale:?}"
    );
}
