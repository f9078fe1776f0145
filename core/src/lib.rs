//! vmcontainer: run LinuxKit virtual-machine images as lightweight
//! containers.
//!
//! The crate is the whole runtime; the CLI and the C, Python and Node
//! bindings only translate. Start with [`LinuxKitManager`] (async, on
//! tokio) or [`blocking::Manager`] (for callers without a runtime).
//!
//! ```no_run
//! # async fn demo() -> vmcontainer::Result<()> {
//! use vmcontainer::{LinuxKitManager, RunOptions};
//! let m = LinuxKitManager::from_env()?;
//! let c = m.run("guest.iso".as_ref(), RunOptions { detach: true, ..Default::default() }).await?;
//! m.wait_ready(&c.id, std::time::Duration::from_secs(120)).await?;
//! let out = m.exec(&c.id, &["uname".into(), "-a".into()]).await?;
//! println!("{}", String::from_utf8_lossy(&out.stdout));
//! m.stop(&c.id, vmcontainer::DEFAULT_STOP_TIMEOUT).await?;
//! # Ok(()) }
//! ```
//!
//! Cargo features (default: `devenv` and `registry`): `devenv` adds the dev
//! environment ([`devenv`], [`DevOps`]) and enables `sources`, the verified
//! HTTP downloads of images ([`sources`]); `registry` adds OCI registries
//! ([`registry`]: push, pull, `run REF`, the dev image's `registry` source)
//! and the KubeVirt export ([`kubevirt`]). Without them the crate has no
//! HTTP, TLS or YAML dependencies; [`ErrorKind`] is the same either way.

pub mod blocking;
pub mod cancel;
pub mod container;
pub mod copy;
pub mod deadline;
#[cfg(feature = "devenv")]
pub mod devenv;
pub mod error;
pub mod home;
pub mod hypervisor;
pub mod id;
pub mod image;
pub mod json_keys;
#[cfg(feature = "registry")]
pub mod kubevirt;
pub mod linuxkit;
pub mod logs;
pub mod manager;
pub(crate) mod mount_namespace;
pub mod options;
pub mod process;
#[cfg(test)]
mod properties;
pub mod qga;
pub mod qmp;
#[cfg(feature = "registry")]
pub mod registry;
pub mod regular_file;
pub mod session;
pub mod snapshot;
#[cfg(feature = "sources")]
pub mod sources;
pub mod spawn;
pub mod ssh;
pub mod state;
pub mod templates;
pub mod transport;

pub use cancel::CancelToken;
pub use container::{Container, Owner, RunOptions, Status};
pub use copy::{CopyEndpoint, CopyOptions};
#[cfg(feature = "devenv")]
pub use devenv::DevOps;
pub use error::{Error, ErrorKind, Result};
pub use home::Home;
pub use hypervisor::{detect_hypervisor, get_hypervisor, Hypervisor};
pub use id::generate_id;
pub use image::{detect_image_format, ImageFormat};
pub use logs::LogFollower;
pub use manager::{ExecOptions, Inspect, LinuxKitManager, DEFAULT_STOP_TIMEOUT};
pub use snapshot::Snapshot;
pub use spawn::{ExitStatus, Process, ProcessControl, SpawnOptions};
pub use ssh::ExecOutput;
pub use transport::Transport;
