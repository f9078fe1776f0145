//! `commit`: a container's disk as a standalone image.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{identity, LinuxKitManager};
use crate::container::Status;
use crate::error::{Error, Result};
use crate::home::absolute;
use crate::hypervisor::{qmp_socket, QemuHypervisor};
use crate::qmp::Qmp;

impl LinuxKitManager {
    /// Writes container `reference`'s disk — its overlay flattened with
    /// every layer below it (snapshots, the image) — to `path`, a new
    /// standalone qcow2 image that boots on its own (`run PATH`).
    ///
    /// A running container is paused while its disk is copied (QEMU
    /// flushes its writes first), as `docker commit` does, so the image is
    /// what the guest had written at that instant: data still in the
    /// guest's page cache is not in it (run `sync` in the guest first).
    /// `path` must end in `.qcow2` and must not exist; it appears only
    /// when complete.
    pub async fn commit(&self, reference: &str, path: &Path) -> Result<PathBuf> {
        let c = self.get(reference)?;
        let disk = c
            .disk
            .clone()
            .filter(|_| c.format.is_some_and(|f| f.is_disk()))
            .ok_or_else(|| {
                Error::invalid(
                    "container",
                    &c.id,
                    "it boots from an ISO or kernel image and has no disk to commit",
                )
            })?;
        let path = absolute(path);
        let shown = path.display().to_string();
        if !path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("qcow2"))
        {
            return Err(Error::invalid("commit path", shown, "must end in .qcow2"));
        }
        if path.symlink_metadata().is_ok() {
            return Err(Error::invalid(
                "commit path",
                shown,
                "already exists; remove it or choose another path",
            ));
        }
        let (Some(parent), Some(file_name)) = (path.parent(), path.file_name()) else {
            return Err(Error::invalid("commit path", shown, "has no file name"));
        };
        if !parent.is_dir() {
            return Err(Error::invalid(
                "commit path",
                shown,
                "its directory does not exist",
            ));
        }
        let qemu_img = QemuHypervisor::new().qemu_img().ok_or_else(|| {
            Error::HypervisorUnavailable("qemu-img not found (install qemu-utils)".into())
        })?;
        let tmp = parent.join(format!(
            ".{}.tmp-{}",
            file_name.to_string_lossy(),
            crate::id::generate_id()
        ));
        let live = c.status == Status::Running && identity(&c).is_current();
        let mut paused = None;
        if let (true, Some(rd)) = (live, &c.runtime_dir) {
            let mut q = Qmp::connect(&qmp_socket(rd)).await?;
            let st = q.execute("query-status", None).await?;
            if st.get("running").and_then(Value::as_bool) == Some(true) {
                q.execute("stop", None).await?;
                paused = Some(q);
            }
        }
        let mut cmd = tokio::process::Command::new(&qemu_img);
        cmd.args(["convert", "-q", "-O", "qcow2"]);
        if live {
            // QEMU holds the image's write lock while the VM exists.
            cmd.arg("-U");
        }
        let out = cmd
            .arg(&disk)
            .arg(&tmp)
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        let resumed = match paused.as_mut() {
            Some(q) => q.execute("cont", None).await.map(|_| ()),
            None => Ok(()),
        };
        let done = match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(std::io::Error::other(format!(
                "qemu-img convert failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))),
            Err(e) => Err(e),
        }
        .and_then(|()| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
            std::fs::File::open(&tmp)?.sync_all()?;
            // A link never replaces an existing file, unlike rename.
            std::fs::hard_link(&tmp, &path)
        });
        let _ = std::fs::remove_file(&tmp);
        done.map_err(|e| Error::io("commit disk to", &path, e))?;
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
        resumed?;
        Ok(path)
    }
}
