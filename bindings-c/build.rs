//! Names the shared library's ABI version the way C users expect: on Linux
//! the SONAME `libvmcontainer.so.<sover>`, on macOS the install name
//! `@rpath/libvmcontainer.<sover>.dylib`, so a program linked against 0.1
//! refuses to load an incompatible 0.2 instead of crashing. `<sover>` is
//! the major version, or `0.<minor>` before 1.0 (semver: every 0.x minor
//! may break the ABI) — the rule cargo-c uses. bindings-c/build-lib.sh
//! installs the matching file names and symlinks.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets CARGO_PKG_VERSION_MINOR");
    let sover = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    // Only the cdylib link: the static library and test binaries are not
    // affected.
    match env::var("CARGO_CFG_TARGET_OS").as_deref() {
        Ok("linux" | "android" | "freebsd" | "netbsd" | "openbsd" | "dragonfly" | "illumos") => {
            println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libvmcontainer.so.{sover}");
        }
        Ok("macos" | "ios") => {
            println!(
                "cargo:rustc-cdylib-link-arg=-Wl,-install_name,@rpath/libvmcontainer.{sover}.dylib"
            );
        }
        _ => {}
    }
}
