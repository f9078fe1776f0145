//! libvmcontainer: the C ABI of the vmcontainer runtime.
//!
//! Thin by design: every function converts its arguments, calls the core
//! crate (through its blocking facade and shared tokio runtime) and maps
//! the result back. One module per concept, as the header groups them:
//!
//! - [`error`] — codes, `vmc_error_t`
//! - [`types`] — strings, status and image-format enums
//! - [`manager`] — `vmc_manager_t` and the container lifecycle
//! - [`options`] — `vmc_run_options_t`
//! - [`container`] — `vmc_container_t`, `vmc_container_list_t`
//! - [`snapshot`] — `vmc_snapshot_t`, snapshots, resuming one, commit
//! - [`exec`] — `vmc_exec_result_t`
//! - [`logs`] — whole logs, follow callbacks, `vmc_log_follower_t`
//! - [`hypervisor`], [`image`], [`id`] — detection and IDs
//! - [`templates`] — LinuxKit templates and variables
//! - `registry` — push and pull over OCI registries, pulled images, the
//!   KubeVirt export (cargo feature `registry`, on by default)
//! - `progress` — `vmc_progress_fn`: transfer progress callbacks
//! - `devenv` — the dev environment: install, update, boot, stop,
//!   status, shell, serve, test, claude, detection (cargo feature `devenv`,
//!   on by default; a library built without it has no `vmc_devenv_*`
//!   symbols, the header is the same)
//! - `sessions` — dev shell, serve, test, claude with the caller's
//!   descriptors (feature `devenv`)
//! - `detect` — serve/test command detection, `.core/test.yaml` (feature
//!   `devenv`)
//! - [`cancel`] — `vmc_cancel_t`: interrupting blocking calls
//!
//! Conventions (see the header's preamble): handles are opaque; every
//! returned object or string has a `*_free` that accepts NULL; fallible
//! calls return `vmc_error_code_t` and fill an optional `vmc_error_t **`;
//! no panic crosses the boundary; NULL and non-UTF-8 arguments are errors.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod ffi;

// Declared in the order the header presents them (cbindgen follows it).
pub mod error;

pub mod types;

pub mod manager;

pub mod options;

pub mod container;

pub mod snapshot;

pub mod exec;

pub mod process;

pub mod logs;

pub mod hypervisor;

pub mod image;

pub mod id;

pub mod templates;

#[cfg(any(feature = "devenv", feature = "registry"))]
pub mod progress;

#[cfg(feature = "registry")]
pub mod registry;

#[cfg(feature = "devenv")]
pub mod devenv;

#[cfg(feature = "devenv")]
pub mod sessions;

#[cfg(feature = "devenv")]
pub mod detect;

pub mod cancel;

use std::ffi::c_char;

/// Major version of the library this header belongs to.
pub const VMC_VERSION_MAJOR: u32 = 0;
/// Minor version of the library this header belongs to.
pub const VMC_VERSION_MINOR: u32 = 1;
/// Patch version of the library this header belongs to.
pub const VMC_VERSION_PATCH: u32 = 0;
/// The version of the library actually loaded, "MAJOR.MINOR.PATCH"
/// (compare with `VMC_VERSION` to detect a header/library mismatch). A static string, never freed.
#[no_mangle]
pub extern "C" fn vmc_version() -> *const c_char {
    static VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    VERSION.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_macros_match_the_package() {
        let parts =
            [VMC_VERSION_MAJOR, VMC_VERSION_MINOR, VMC_VERSION_PATCH].map(|n| n.to_string());
        assert_eq!(parts.join("."), env!("CARGO_PKG_VERSION"));
        // SAFETY: a static NUL-terminated string.
        let loaded = unsafe { std::ffi::CStr::from_ptr(vmc_version()) };
        assert_eq!(loaded.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}

/// See the `mimalloc` line of the workspace Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
