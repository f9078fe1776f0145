//! Empty on purpose: see this crate's Cargo.toml. It exists only so that
//! every artefact's cargo command resolves the same dependency features.
