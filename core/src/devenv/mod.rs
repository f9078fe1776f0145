//! The portable development environment (`vmcontainer dev ...`): the
//! `core-devops` image, its download and updates, and a VM named `core-dev`
//! with the current project at `/app`.
//!
//! - [`config`]: `config.yaml` (go-container's schema).
//! - [`images`]: `manifest.json`, install and update checks.
//! - [`DevOps`]: boot, stop, status, shell, serve, test, claude.
//! - [`detect`] and [`test_config`]: what `serve` and `test` run.

pub mod blocking;
pub mod claude;
pub mod config;
mod console;
pub mod detect;
mod devops;
mod guest;
pub mod images;
mod serve;
mod shell;
pub mod test_config;
mod testing;

use std::path::PathBuf;

pub use claude::{Auth, ClaudeOptions};
pub use config::{Config, SourceSelection};
pub use detect::{detect_serve_command, detect_test_command};
pub use devops::{project_dir, BootOptions, DevOps, DevStatus, DEV_CONTAINER_NAME};
pub use images::{image_name, ImageInfo, ImageManager, InstallReport, Manifest, UpdateInfo};
pub use serve::ServeOptions;
pub use shell::ShellOptions;
pub use test_config::{load_test_config, TestCommand, TestConfig};
pub use testing::TestOptions;

/// Where the project directory appears in the guest.
pub const GUEST_PROJECT_DIR: &str = "/app";

/// Errors of the dev environment. Each names the file or the command that
/// fixes it.
#[derive(Debug, thiserror::Error)]
pub enum DevenvError {
    /// `config.yaml` or `.core/test.yaml` is not valid.
    #[error("invalid {}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// `manifest.json` in the images directory is corrupt; it is left as is.
    #[error("image manifest {} is corrupt ({reason}); it was left untouched — repair or move it away", path.display())]
    CorruptManifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The dev image has not been downloaded.
    #[error("dev environment not installed (no {}): run `vmcontainer dev install`", image.display())]
    NotInstalled {
        /// Where the image should be.
        image: PathBuf,
    },
    /// The dev VM is not running.
    #[error("dev environment is not running: run `vmcontainer dev boot`")]
    NotRunning,
    /// The dev VM is already running.
    #[error("dev environment is already running (container {id}): run `vmcontainer dev stop` first, or boot with --fresh")]
    AlreadyRunning {
        /// Its container ID.
        id: String,
    },
    /// Updating would pull the image from under the running VM.
    #[error("dev environment is running (container {id}) on the current image: run `vmcontainer dev stop` before updating")]
    UpdateWhileRunning {
        /// Its container ID.
        id: String,
    },
    /// The running VM shares another project directory at `/app`.
    #[error("the dev environment has {} at /app, not {}: run this from that project, or `vmcontainer dev boot --fresh` here", running.display(), requested.display())]
    ProjectMismatch {
        /// The directory shared at boot.
        running: PathBuf,
        /// The directory asked for.
        requested: PathBuf,
    },
    /// No test command was given, named or detected.
    #[error("could not detect a test command in {}: pass one after `--`, or set `command` in .core/test.yaml", dir.display())]
    NoTestCommand {
        /// The project directory.
        dir: PathBuf,
    },
    /// `--name` names no command in `.core/test.yaml`.
    #[error("no test command named {name:?} in {}{}", path.display(), if known.is_empty() { String::new() } else { format!(" (known: {})", known.join(", ")) })]
    UnknownTestCommand {
        /// The name asked for.
        name: String,
        /// The test config.
        path: PathBuf,
        /// The names it does define.
        known: Vec<String>,
    },
    /// A command in the guest failed.
    #[error("{what} failed in the dev environment (exit {code}): {stderr}")]
    GuestCommand {
        /// What was being done.
        what: &'static str,
        /// Its exit code.
        code: i32,
        /// Its standard error.
        stderr: String,
    },
}

impl DevenvError {
    /// The stable kind bindings see (existing kinds only, so no binding's
    /// mapping has to change).
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind as K;
        match self {
            DevenvError::InvalidFile { .. }
            | DevenvError::ProjectMismatch { .. }
            | DevenvError::NoTestCommand { .. }
            | DevenvError::UnknownTestCommand { .. } => K::InvalidInput,
            DevenvError::CorruptManifest { .. } => K::StateCorrupt,
            DevenvError::NotInstalled { .. } => K::NotFound,
            DevenvError::NotRunning => K::NotRunning,
            DevenvError::AlreadyRunning { .. } | DevenvError::UpdateWhileRunning { .. } => {
                K::Running
            }
            DevenvError::GuestCommand { .. } => K::Communication,
        }
    }
}
