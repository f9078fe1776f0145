//! Node.js bindings for vmcontainer (`require('vmcontainer')`).
//!
//! Thin by design: every behaviour lives in the `vmcontainer` crate; this
//! crate converts values between JavaScript and Rust and maps errors onto JS
//! `Error` objects with a stable `code`.
//!
//! Exports: `Manager` (its registry methods `push`, `pull`, `pulledImages`,
//! `exportKubevirt` from `registry.rs`, with the `registry` cargo feature,
//! the default) and the module-level functions; the `devenv`
//! namespace (`DevOps`, project detection) from `devenv.rs`, when built
//! with the `devenv` cargo feature (the default).
//!
//! Every call that does I/O returns a Promise whose work runs on napi-rs's
//! tokio runtime (`spawn_future_with_callback`), never on the event loop and
//! never on libuv's threadpool; synchronous core calls (state-file reads)
//! run on tokio's blocking pool. Only pure functions and `PATH` lookups are
//! synchronous.

#![deny(missing_docs)]
// napi-derive compiles its export registration out of unit tests, so what
// only JS calls looks unused there.
#![cfg_attr(test, allow(dead_code))]

mod callback;
mod convert;
#[cfg(feature = "devenv")]
mod devenv;
mod error;
mod follow;
mod functions;
mod manager;
mod process;
#[cfg(any(feature = "devenv", feature = "registry"))]
mod progress;
mod promise;
#[cfg(feature = "registry")]
mod registry;
mod types;

#[cfg(feature = "devenv")]
pub use devenv::DevOps;
pub use error::ErrorCode;
pub use follow::{LogLine, LogStream};
pub use manager::Manager;
pub use process::Process;

/// See the `mimalloc` line of the workspace Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
