//! A hypervisor in its own user and mount namespace, so host directories
//! can be shared with a running VM without rebooting it.
//!
//! QEMU cannot add a 9p share to a running VM (there is no QMP command for
//! an `fsdev`). Instead the VM is given, at boot, a 9p share of an empty
//! directory it owns, and QEMU is started (through util-linux `unshare`)
//! in a private user and mount namespace. Sharing a directory later is a
//! bind mount into that empty directory *inside QEMU's namespace* (through
//! `nsenter`): QEMU's 9p server then serves it, while the host's own mount
//! table never changes and no other process sees the mount. Only the
//! directories asked for become visible to the guest; they stay shared
//! until the VM stops (its namespace dies with it).
//!
//! Needs unprivileged user namespaces (Debian's default; some distributions
//! restrict them). [`supported`] checks once per process.

// Sharing into a running VM is used by the dev environment only; a build
// without it keeps the namespace wrapper (a record may ask for it).
#![cfg_attr(not(feature = "devenv"), allow(dead_code))]

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::hypervisor::CommandLine;

/// Whether this host lets us make a user and mount namespace (tried once
/// per process with `unshare -U -m --map-root-user true`, ~2 ms).
pub fn supported() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        cfg!(target_os = "linux")
            && Command::new("unshare")
                .args(["-U", "-m", "--map-root-user", "true"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

/// `cmd` run in a new user namespace (the caller's user as its root, so
/// nothing gains privileges on the host) and mount namespace. Mounts the
/// host makes later still propagate in (`slave`).
pub fn wrap(cmd: CommandLine) -> CommandLine {
    let mut args: Vec<std::ffi::OsString> = [
        "-U",
        "-m",
        "--map-root-user",
        "--propagation",
        "slave",
        "--",
    ]
    .iter()
    .map(Into::into)
    .collect();
    args.push(cmd.program.into_os_string());
    args.extend(cmd.args);
    CommandLine {
        program: "unshare".into(),
        args,
    }
}

/// Whether `target` is a mount point in the mount namespace of `pid`.
pub fn is_mounted(pid: i32, target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
        return false;
    };
    let want = mountinfo_escape(target);
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// `/proc/*/mountinfo` writes space, tab, newline and backslash octal.
fn mountinfo_escape(p: &Path) -> String {
    let mut out = String::new();
    for c in p.to_string_lossy().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// Bind-mounts `source` on `target` (an existing directory) inside the
/// namespaces of process `pid`, started by [`wrap`]. Idempotent.
pub fn bind_into(pid: i32, source: &Path, target: &Path) -> Result<()> {
    if is_mounted(pid, target) {
        return Ok(());
    }
    let out = Command::new("nsenter")
        .arg("-t")
        .arg(pid.to_string())
        .args([
            "-U",
            "-m",
            "--preserve-credentials",
            "--",
            "mount",
            "--bind",
        ])
        .arg(source)
        .arg(target)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::io("run nsenter (util-linux)", "nsenter", e))?;
    if !out.status.success() && !is_mounted(pid, target) {
        return Err(Error::invalid(
            "project directory",
            source.display().to_string(),
            format!(
                "could not share it with the running VM: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_argument_intact() {
        let cmd = CommandLine {
            program: "/usr/bin/qemu-system-x86_64".into(),
            args: vec!["-name".into(), "a b,c".into()],
        };
        let w = wrap(cmd);
        assert_eq!(w.program, std::path::PathBuf::from("unshare"));
        assert_eq!(
            w.args_lossy(),
            [
                "-U",
                "-m",
                "--map-root-user",
                "--propagation",
                "slave",
                "--",
                "/usr/bin/qemu-system-x86_64",
                "-name",
                "a b,c"
            ]
        );
    }

    #[test]
    fn a_bind_mount_is_seen_only_in_the_namespace() {
        assert!(supported(), "unprivileged user namespaces are needed here");
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("my project"), tmp.path().join("slot"));
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&dst).unwrap();
        std::fs::write(src.join("f"), "x").unwrap();
        let w = wrap(CommandLine {
            program: "sleep".into(),
            args: vec!["30".into()],
        });
        let mut child = Command::new(&w.program).args(&w.args).spawn().unwrap();
        let pid = child.id() as i32;
        // Until unshare has exec'd sleep, the namespace may not exist yet.
        let t = std::time::Instant::now();
        while std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|e| !e.to_string_lossy().contains("sleep"))
        {
            assert!(t.elapsed().as_secs() < 10);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        bind_into(pid, &src, &dst).unwrap();
        bind_into(pid, &src, &dst).unwrap();
        assert!(is_mounted(pid, &dst));
        let inside = format!("/proc/{pid}/root{}/f", dst.display());
        assert_eq!(std::fs::read_to_string(inside).unwrap(), "x");
        // The host's own view is unchanged.
        assert!(!dst.join("f").exists());
        let _ = child.kill();
        let _ = child.wait();
    }
}
