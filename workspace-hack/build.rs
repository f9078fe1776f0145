//! Empty: the build-dependencies of this crate only steer feature
//! resolution (see Cargo.toml); a build script makes them host
//! dependencies that cargo resolves.
fn main() {}
