//! Hypervisors: what each needs to boot a VM, and how to pick one.

mod accel;
pub mod accel_cache;
mod hyperkit;
pub mod migration;
mod qemu;

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use accel::{detect_accel, probe_accel, Accel, AccelChoice};
pub use hyperkit::HyperkitHypervisor;
pub use qemu::{escape_option_value, QemuHypervisor};

use crate::error::{Error, Result};
use crate::image::{ImageFormat, KernelImage};

/// What to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootImage {
    /// ISO attached read-only as a CD-ROM and booted from.
    Iso(PathBuf),
    /// A disk image (for QEMU: the container's own qcow2 overlay).
    Disk {
        /// Image file.
        path: PathBuf,
        /// `qcow2`, `vmdk` or `raw`.
        format: &'static str,
    },
    /// Direct kernel boot.
    Kernel(KernelImage),
}

/// One forwarded TCP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortForward {
    /// Address the host side listens on.
    pub bind: IpAddr,
    /// Host port; 0 lets the hypervisor pick a free one.
    pub host: u16,
    /// Guest port.
    pub guest: u16,
}

/// One 9p share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Host directory.
    pub host: PathBuf,
    /// 9p mount tag (the guest path's base name, as go-container did).
    pub tag: String,
}

/// Everything a command builder needs to start one VM.
#[derive(Debug, Clone, PartialEq)]
pub struct VmSpec {
    /// Container ID (also written into the command line so the process can
    /// be recognised).
    pub id: String,
    /// The image to boot.
    pub image: BootImage,
    /// Memory in MB.
    pub memory_mb: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Port forwards, SSH included.
    pub ports: Vec<PortForward>,
    /// Shared directories.
    pub shares: Vec<Share>,
    /// Serial console log file.
    pub log_path: PathBuf,
    /// Private directory for sockets and the pid file.
    pub runtime_dir: PathBuf,
    /// Accelerator to use.
    pub accel: Accel,
    /// Detach from the caller (QEMU `-daemonize`).
    pub daemonize: bool,
}

impl VmSpec {
    /// QMP socket path.
    pub fn qmp_socket(&self) -> PathBuf {
        qmp_socket(&self.runtime_dir)
    }
    /// Console socket path.
    pub fn console_socket(&self) -> PathBuf {
        console_socket(&self.runtime_dir)
    }
    /// Pid file path.
    pub fn pid_file(&self) -> PathBuf {
        pid_file(&self.runtime_dir)
    }
    /// Prefix of the guest agent's FIFO pair (`<prefix>.in`, `<prefix>.out`).
    pub fn agent_channel(&self) -> PathBuf {
        crate::qga::channel_prefix(&self.runtime_dir)
    }
    /// Prefix of the data port's FIFO pair (see [`crate::qga::data_port`]).
    pub fn data_channel(&self) -> PathBuf {
        crate::qga::data_port::channel_prefix(&self.runtime_dir)
    }
    /// The hypervisor's own messages once it runs detached.
    pub fn hypervisor_log(&self) -> PathBuf {
        hypervisor_log(&self.runtime_dir)
    }
}

/// QMP socket inside a runtime directory.
pub fn qmp_socket(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("qmp.sock")
}
/// Serial console socket inside a runtime directory.
pub fn console_socket(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("console.sock")
}
/// Pid file inside a runtime directory.
pub fn pid_file(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("hypervisor.pid")
}
/// The hypervisor's stderr once detached (QEMU's `-D`): where it says why
/// it exited (`terminating on signal 15 from pid …`, fatal errors).
pub fn hypervisor_log(runtime_dir: &Path) -> PathBuf {
    runtime_dir.join("hypervisor.log")
}

/// A program and its arguments, run directly (never through a shell).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
}

impl CommandLine {
    /// The arguments as UTF-8 strings (lossy), for display and tests.
    pub fn args_lossy(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }
}

/// A hypervisor backend.
pub trait Hypervisor: Send + Sync + std::fmt::Debug {
    /// `qemu` or `hyperkit`.
    fn name(&self) -> &'static str;
    /// Whether it can run on this host.
    fn available(&self) -> bool;
    /// The command that boots `spec`.
    fn build_command(&self, spec: &VmSpec) -> Result<CommandLine>;
    /// Gives a VM a disk it may write without touching `image`: QEMU makes
    /// a qcow2 overlay at `overlay` backed by the image and returns its path.
    fn prepare_disk(&self, image: &Path, format: ImageFormat, overlay: &Path) -> Result<PathBuf>;
    /// The accelerator VMs started now would use.
    fn accel(&self) -> Result<AccelChoice>;
}

/// Finds an executable named `name` on `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The best hypervisor here: Hyperkit on macOS when installed, else QEMU.
pub fn detect_hypervisor() -> Result<Arc<dyn Hypervisor>> {
    if cfg!(target_os = "macos") {
        let hk = HyperkitHypervisor::new();
        if hk.available() {
            return Ok(Arc::new(hk));
        }
    }
    let q = QemuHypervisor::new();
    if q.available() {
        return Ok(Arc::new(q));
    }
    Err(Error::HypervisorUnavailable(format!(
        "no hypervisor found: install QEMU ({}{})",
        QemuHypervisor::binary_name(),
        if cfg!(target_os = "macos") {
            ", e.g. `brew install qemu`) or Hyperkit"
        } else {
            ", e.g. `apt-get install qemu-system-x86 qemu-utils`)"
        }
    )))
}

/// The hypervisor called `name` (`qemu` or `hyperkit`, any case).
pub fn get_hypervisor(name: &str) -> Result<Arc<dyn Hypervisor>> {
    let h: Arc<dyn Hypervisor> = match name.to_ascii_lowercase().as_str() {
        "qemu" => Arc::new(QemuHypervisor::new()),
        "hyperkit" => Arc::new(HyperkitHypervisor::new()),
        _ => {
            return Err(Error::invalid(
                "hypervisor",
                name,
                "unknown hypervisor; expected \"qemu\" or \"hyperkit\"",
            ))
        }
    };
    if !h.available() {
        let why = match h.name() {
            "hyperkit" if !cfg!(target_os = "macos") => "hyperkit runs only on macOS".to_string(),
            "hyperkit" => "hyperkit is not installed (brew install hyperkit)".to_string(),
            _ => format!(
                "{} is not installed or not on PATH",
                QemuHypervisor::binary_name()
            ),
        };
        return Err(Error::HypervisorUnavailable(why));
    }
    Ok(h)
}
