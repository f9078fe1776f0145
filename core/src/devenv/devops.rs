//! [`DevOps`]: the `core-dev` VM's lifecycle (install, boot, stop, status)
//! over the container manager. Sessions in it (shell, serve, test, claude)
//! live in their own modules.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::config::{Config, DEFAULT_CPUS, DEFAULT_MEMORY_MB};
use super::guest;
use super::images::{ImageManager, InstallReport, UpdateInfo};
use super::{DevenvError, GUEST_PROJECT_DIR};
use crate::container::{Container, RunOptions, Status};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::manager::{LinuxKitManager, DEFAULT_STOP_TIMEOUT};
use crate::sources::download::Progress;

/// Name of the dev VM's container.
pub const DEV_CONTAINER_NAME: &str = "core-dev";
/// How long `boot` waits for the guest's SSH host key by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to boot the dev environment. `None` fields come from `config.yaml`
/// (`dev:`), then the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootOptions {
    /// Memory in MB (default 4096).
    pub memory: Option<u32>,
    /// vCPUs (default 2).
    pub cpus: Option<u32>,
    /// Stop and remove a running (or stopped) dev VM and boot a new one.
    pub fresh: bool,
    /// Project directory shared at `/app` (default: the current
    /// directory).
    pub project: Option<PathBuf>,
    /// Private key for SSH (default: `dev.ssh_key`, else ssh's own).
    pub ssh_key: Option<PathBuf>,
    /// How long to wait for the guest's SSH host key.
    pub ready_timeout: Duration,
}

impl Default for BootOptions {
    fn default() -> Self {
        BootOptions {
            memory: None,
            cpus: None,
            fresh: false,
            project: None,
            ssh_key: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// What `status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevStatus {
    /// Whether the image is downloaded.
    pub installed: bool,
    /// Whether the VM is running.
    pub running: bool,
    /// Installed image version.
    pub image_version: Option<String>,
    /// The image file.
    pub image_path: PathBuf,
    /// The VM's container ID.
    pub container_id: Option<String>,
    /// Memory in MB.
    pub memory: Option<u32>,
    /// vCPUs.
    pub cpus: Option<u32>,
    /// Host port of the guest's SSH.
    pub ssh_port: Option<u16>,
    /// Seconds since the VM started (running only).
    pub uptime_secs: Option<u64>,
    /// Project directory shared at `/app`.
    pub project: Option<PathBuf>,
}

/// The dev environment of one vmcontainer home.
#[derive(Debug, Clone)]
pub struct DevOps {
    config: Config,
    images: ImageManager,
    manager: LinuxKitManager,
}

impl DevOps {
    /// The dev environment of `home`, configured by its `config.yaml`.
    pub fn new(home: Home) -> Result<Self> {
        Self::with_manager(LinuxKitManager::new(home)?)
    }

    /// The dev environment of `$VMCONTAINER_HOME` (default `~/.core`).
    pub fn from_env() -> Result<Self> {
        Self::new(Home::from_env()?)
    }

    /// The dev environment over an existing manager.
    pub fn with_manager(manager: LinuxKitManager) -> Result<Self> {
        let config = Config::load(&manager.home().config_path())?;
        let images = ImageManager::new(manager.home(), &config)?;
        Ok(DevOps {
            config,
            images,
            manager,
        })
    }

    /// From explicit parts (tests, custom sources).
    pub fn from_parts(config: Config, images: ImageManager, manager: LinuxKitManager) -> Self {
        DevOps {
            config,
            images,
            manager,
        }
    }

    /// The configuration in effect.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The image manager.
    pub fn images(&self) -> &ImageManager {
        &self.images
    }
    /// The container manager.
    pub fn manager(&self) -> &LinuxKitManager {
        &self.manager
    }

    /// Whether the image is downloaded.
    pub fn is_installed(&self) -> bool {
        self.images.is_installed()
    }

    /// Downloads and installs the latest image (see
    /// [`ImageManager::install`]).
    pub async fn install(&self, progress: Progress<'_>) -> Result<InstallReport> {
        self.images.install(progress).await
    }

    /// Compares the installed and the latest version.
    pub async fn check_update(&self) -> Result<UpdateInfo> {
        self.images.check_update().await
    }

    /// Installs the latest image if it differs from the installed one.
    /// Refused while the dev VM runs; a stopped dev VM is removed, since
    /// its disk overlay is bound to the old image.
    pub async fn update(&self, progress: Progress<'_>) -> Result<Option<InstallReport>> {
        let info = self.check_update().await?;
        if !info.has_update {
            return Ok(None);
        }
        if let Some(c) = self.container_async().await? {
            if c.status == Status::Running {
                return Err(DevenvError::UpdateWhileRunning { id: c.id }.into());
            }
        }
        let report = self.images.install(progress).await?;
        if let Some(c) = self.container_async().await? {
            self.manager.remove(&c.id, false).await?;
        }
        Ok(Some(report))
    }

    /// The dev VM's container record, if one exists.
    pub fn container(&self) -> Result<Option<Container>> {
        Ok(self
            .manager
            .list()?
            .into_iter()
            .find(|c| c.name == DEV_CONTAINER_NAME))
    }

    /// [`Self::container`] for async callers: reading the state, and the
    /// lock a reconciliation takes, happen on a blocking thread.
    pub(crate) async fn container_async(&self) -> Result<Option<Container>> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.container())
            .await
            .map_err(|e| {
                Error::io(
                    "read state",
                    self.manager.home().state_path(),
                    std::io::Error::other(e),
                )
            })?
    }

    /// The running dev VM, or [`DevenvError::NotRunning`].
    pub(crate) async fn running(&self) -> Result<Container> {
        match self.container_async().await? {
            Some(c) if c.status == Status::Running => Ok(c),
            _ => Err(DevenvError::NotRunning.into()),
        }
    }

    /// Whether the dev VM is running.
    pub fn is_running(&self) -> Result<bool> {
        Ok(self
            .container()?
            .is_some_and(|c| c.status == Status::Running))
    }

    /// Boots the dev VM (detached) with the project at `/app`, waits for
    /// its SSH host key (pinned per container) and mounts the project.
    ///
    /// A running dev VM is refused unless `fresh`, which removes it first.
    /// A stopped one with the same settings is started again, keeping what
    /// its guest wrote; with other settings it is replaced.
    pub async fn boot(&self, opts: BootOptions) -> Result<Container> {
        if !self.images.is_installed() {
            return Err(DevenvError::NotInstalled {
                image: self.images.image_path(),
            }
            .into());
        }
        // An image go-container installed has no hash in the manifest:
        // its first boot here records one (see `record_missing_hash`).
        self.images.record_missing_hash_async(None).await?;
        let project = project_dir(opts.project.as_deref())?;
        let memory = opts
            .memory
            .or(self.config.dev.memory)
            .unwrap_or(DEFAULT_MEMORY_MB);
        let cpus = opts.cpus.or(self.config.dev.cpus).unwrap_or(DEFAULT_CPUS);
        let ssh_key = opts
            .ssh_key
            .clone()
            .or_else(|| self.config.dev.ssh_key.clone())
            .map(|k| crate::home::absolute(&k));
        let image = self.images.image_path();

        let mut restart = None;
        if let Some(c) = self.container_async().await? {
            let same = c.image == image.to_string_lossy()
                && c.memory == memory
                && c.cpus == cpus
                && c.ssh_key.as_deref().map(PathBuf::from) == ssh_key
                && project_of(&c).as_deref() == Some(project.as_path());
            match (c.status == Status::Running, opts.fresh, same) {
                (true, false, _) => return Err(DevenvError::AlreadyRunning { id: c.id }.into()),
                (false, false, true) => restart = Some(c.id),
                _ => {
                    self.manager.remove(&c.id, true).await?;
                }
            }
        }
        let c = match restart {
            Some(id) => self.manager.start(&id).await?,
            None => {
                self.manager
                    .run(
                        &image,
                        RunOptions {
                            name: Some(DEV_CONTAINER_NAME.into()),
                            detach: true,
                            memory: Some(memory),
                            cpus: Some(cpus),
                            volumes: self.boot_volumes(&project)?,
                            ssh_key,
                            // Other projects are shared later, per call.
                            mount_namespace: true,
                            ..Default::default()
                        },
                    )
                    .await?
            }
        };
        let c = self
            .manager
            .wait_ready(&c.id, opts.ready_timeout)
            .await
            .map_err(|e| match e {
                Error::Timeout { what, secs } => Error::Timeout {
                    what: format!(
                        "{what} (the VM is still booting: see `vmcontainer logs {DEV_CONTAINER_NAME}`)"
                    ),
                    secs,
                },
                other => other,
            })?;
        guest::run_script(
            &self.manager,
            &c.id,
            "mounting the project at /app",
            &guest::mount_script(),
        )
        .await?;
        Ok(c)
    }

    /// Stops the dev VM (ACPI power-down first). The container is kept, so
    /// the next `boot` resumes its disk.
    pub async fn stop(&self) -> Result<Container> {
        let c = self.running().await?;
        self.manager.stop(&c.id, DEFAULT_STOP_TIMEOUT).await
    }

    /// Installed, running, version, container, resources, SSH port,
    /// uptime and project.
    pub fn status(&self) -> Result<DevStatus> {
        let c = self.container()?;
        let running = c.as_ref().is_some_and(|c| c.status == Status::Running);
        Ok(DevStatus {
            installed: self.images.is_installed(),
            running,
            image_version: self.images.installed()?.map(|i| i.version),
            image_path: self.images.image_path(),
            container_id: c.as_ref().map(|c| c.id.clone()),
            memory: c.as_ref().map(|c| c.memory),
            cpus: c.as_ref().map(|c| c.cpus),
            ssh_port: c.as_ref().filter(|_| running).map(|c| c.ssh_port),
            uptime_secs: c
                .as_ref()
                .filter(|_| running)
                .map(|c| (Utc::now() - c.started_at).num_seconds().max(0) as u64),
            project: c.as_ref().and_then(project_of),
        })
    }

    /// The boot project at `/app` and, where the host allows sharing more
    /// later, the (empty) directory other projects are bind-mounted into.
    fn boot_volumes(&self, project: &Path) -> Result<Vec<(PathBuf, String)>> {
        let mut v = vec![(project.to_path_buf(), GUEST_PROJECT_DIR.into())];
        if crate::mount_namespace::supported() {
            let slots = self.project_slots();
            crate::home::Home::ensure_dir(&slots)?;
            v.push((slots, GUEST_SLOTS_DIR.into()));
        }
        Ok(v)
    }

    /// Host directory whose entries are the projects shared after boot.
    fn project_slots(&self) -> PathBuf {
        self.manager.home().root().join("dev-projects")
    }

    /// Where `project` (default: the current directory) is in the running
    /// VM `c`. The boot project, or a directory inside it, is under `/app`
    /// as shared at boot. Any other directory is shared now, without a
    /// reboot: bind-mounted into the VM's slot directory inside QEMU's own
    /// mount namespace (see `crate::mount_namespace`), and the session
    /// shows it at `/app` in a private mount namespace of its own, so calls
    /// from two projects at once each see theirs. Only directories asked
    /// for are ever shared; they stay shared until the VM stops.
    pub(crate) async fn guest_project(
        &self,
        c: &Container,
        project: Option<&Path>,
    ) -> Result<GuestProject> {
        let requested = project_dir(project)?;
        let shared = project_of(c).unwrap_or_default();
        if let Ok(rel) = requested.strip_prefix(&shared) {
            if !shared.as_os_str().is_empty() {
                let rel = utf8(&requested, rel)?;
                return Ok(GuestProject {
                    dir: if rel.is_empty() {
                        GUEST_PROJECT_DIR.to_string()
                    } else {
                        format!("{GUEST_PROJECT_DIR}/{rel}")
                    },
                    bind: None,
                });
            }
        }
        let slots = c
            .volumes
            .iter()
            .find(|(_, g)| g.as_str() == GUEST_SLOTS_DIR)
            .map(|(h, _)| PathBuf::from(h));
        let Some(slots) = slots.filter(|_| c.mount_namespace) else {
            return Err(DevenvError::ProjectMismatch {
                running: shared,
                requested,
            }
            .into());
        };
        utf8(&requested, &requested)?;
        let slot = slot_name(&requested);
        let (pid, source, target) = (c.pid, requested.clone(), slots.join(&slot));
        tokio::task::spawn_blocking(move || -> Result<()> {
            crate::home::Home::ensure_dir(&target)?;
            crate::mount_namespace::bind_into(pid, &source, &target)
        })
        .await
        .map_err(|e| Error::io("share project", &requested, std::io::Error::other(e)))??;
        Ok(GuestProject {
            dir: GUEST_PROJECT_DIR.to_string(),
            bind: Some(format!("{GUEST_SLOTS_DIR}/{slot}")),
        })
    }

    /// Makes sure `/app` is mounted (a guest may have been restarted).
    pub(crate) async fn ensure_mounted(&self, c: &Container) -> Result<()> {
        guest::run_script(
            &self.manager,
            &c.id,
            "mounting the project at /app",
            &guest::mount_script(),
        )
        .await
    }
}

/// Guest directory holding the projects shared after boot.
pub(crate) const GUEST_SLOTS_DIR: &str = "/mnt/dev-projects";

/// Where a project is in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GuestProject {
    /// The directory to work in.
    pub dir: String,
    /// A guest directory the session must bind-mount on `/app` (in a mount
    /// namespace of its own) first: a project shared after boot.
    pub bind: Option<String>,
}

/// The slot of `project` under the slots directory: a digest of its path,
/// so one project always gets the same slot and names never clash.
fn slot_name(project: &Path) -> String {
    use sha2::{Digest, Sha256};
    use std::os::unix::ffi::OsStrExt;
    let d = Sha256::digest(project.as_os_str().as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn utf8<'a>(project: &Path, p: &'a Path) -> Result<&'a str> {
    p.to_str().ok_or_else(|| {
        Error::invalid(
            "project directory",
            project.display().to_string(),
            "not valid UTF-8",
        )
    })
}

/// The host directory shared at `/app`.
fn project_of(c: &Container) -> Option<PathBuf> {
    c.volumes
        .iter()
        .find(|(_, g)| g.as_str() == GUEST_PROJECT_DIR)
        .map(|(h, _)| PathBuf::from(h))
}

/// `dir` (default: the current directory), canonical, which must be a
/// directory.
pub fn project_dir(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir().map_err(|e| Error::io("read current directory", ".", e))?,
    };
    let canon =
        std::fs::canonicalize(&dir).map_err(|e| Error::io("open project directory", &dir, e))?;
    if !canon.is_dir() {
        return Err(Error::invalid(
            "project directory",
            dir.display().to_string(),
            "not a directory",
        ));
    }
    Ok(canon)
}
