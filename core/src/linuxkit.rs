//! Building bootable ISO images from LinuxKit YAML with the `linuxkit` binary.

use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use thiserror::Error;
use tokio::io::AsyncWriteExt;

/// Environment variable naming the `linuxkit` binary explicitly; it takes
/// precedence over every search location.
pub const LINUXKIT_ENV: &str = "VMCONTAINER_LINUXKIT";

/// Searched after PATH because package managers install there without
/// always putting the directory on PATH for non-login shells.
const FALLBACK_PATHS: [&str; 2] = ["/usr/local/bin/linuxkit", "/opt/homebrew/bin/linuxkit"];

/// Errors from building an image with LinuxKit.
#[derive(Debug, Error)]
pub enum LinuxKitError {
    /// No usable `linuxkit` binary was found.
    #[error(
        "LinuxKit is not installed: no executable linuxkit found via $VMCONTAINER_LINUXKIT, PATH, \
         /usr/local/bin or /opt/homebrew/bin; install LinuxKit from \
         https://github.com/linuxkit/linuxkit"
    )]
    NotInstalled,
    /// The image name cannot be used as a file name.
    #[error("invalid image name {:?}: use letters, digits, '_', '.' and '-', starting with a letter or digit", crate::error::shown(.name))]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// `linuxkit build` exited unsuccessfully.
    #[error("linuxkit build of {name:?} failed ({status}): {stderr}")]
    BuildFailed {
        /// The image name.
        name: String,
        /// How linuxkit exited.
        status: ExitStatus,
        /// What linuxkit wrote to stderr, trimmed.
        stderr: String,
    },
    /// `linuxkit build` succeeded but the expected ISO is not there.
    #[error("linuxkit build succeeded but did not produce {}", .path.display())]
    OutputMissing {
        /// Where the ISO was expected.
        path: PathBuf,
    },
    /// Writing the YAML, preparing the output or starting linuxkit failed.
    #[error("{}: {error}", .path.display())]
    Io {
        /// The file, directory or binary involved.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
}

/// Locates `linuxkit`: `$VMCONTAINER_LINUXKIT` if set (and nothing else, so a
/// wrong explicit path is reported instead of silently replaced), else PATH,
/// else the Homebrew and `/usr/local` locations.
pub fn find_linuxkit() -> Option<PathBuf> {
    let fallbacks = FALLBACK_PATHS.map(Path::new);
    locate(
        std::env::var_os(LINUXKIT_ENV),
        std::env::var_os("PATH"),
        &fallbacks,
    )
}

fn locate(
    explicit: Option<OsString>,
    path: Option<OsString>,
    fallbacks: &[&Path],
) -> Option<PathBuf> {
    if let Some(explicit) = explicit.filter(|e| !e.is_empty()) {
        let explicit = PathBuf::from(explicit);
        return is_executable(&explicit).then_some(explicit);
    }
    let on_path = path
        .iter()
        .flat_map(std::env::split_paths)
        // Empty or relative entries would resolve against the current
        // directory, which could run an attacker's binary.
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join("linuxkit"));
    on_path
        .chain(fallbacks.iter().map(|p| p.to_path_buf()))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `linuxkit build` invocation producing `<out_dir>/<name>.iso` from `yml`.
pub fn build_command(linuxkit: &Path, yml: &Path, name: &str, out_dir: &Path) -> Command {
    let mut cmd = Command::new(linuxkit);
    cmd.args(["build", "--format", "iso-bios", "--name", name, "--dir"])
        .arg(out_dir)
        .arg(yml);
    cmd
}

/// Where `linuxkit build --format iso-bios` puts the image for `name`.
pub fn expected_output(out_dir: &Path, name: &str) -> PathBuf {
    out_dir.join(format!("{name}.iso"))
}

/// Suffixes of the image `linuxkit build` may leave for `name`, in the
/// order go-container tried them (versions of linuxkit name the output
/// differently).
const OUTPUT_SUFFIXES: [&str; 5] = [".iso", "-bios.iso", ".qcow2", ".raw", ".vmdk"];

/// The image a build left in `out_dir` for `name`: the first of
/// `NAME.iso`, `NAME-bios.iso`, `NAME.qcow2`, `NAME.raw`, `NAME.vmdk`, else
/// (sorted, so the choice is stable) a file named `NAME*` ending in `.iso`,
/// `.qcow2`, `.raw` or `.vmdk` — go-container's lookup.
pub fn find_built_image(out_dir: &Path, name: &str) -> Option<PathBuf> {
    let is_file = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file());
    if let Some(p) = OUTPUT_SUFFIXES
        .iter()
        .map(|s| out_dir.join(format!("{name}{s}")))
        .find(|p| is_file(p))
    {
        return Some(p);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(name)
                    && [".iso", ".qcow2", ".raw", ".vmdk"]
                        .iter()
                        .any(|ext| n.ends_with(ext))
            }) && is_file(p)
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// Writes `content` to `<work_dir>/<name>.yml` and builds `<work_dir>/<name>.iso`.
pub async fn build_iso(
    content: &str,
    name: &str,
    work_dir: &Path,
) -> Result<PathBuf, LinuxKitError> {
    build_iso_with(find_linuxkit(), content, name, work_dir).await
}

async fn build_iso_with(
    linuxkit: Option<PathBuf>,
    content: &str,
    name: &str,
    work_dir: &Path,
) -> Result<PathBuf, LinuxKitError> {
    if !valid_name(name) {
        return Err(LinuxKitError::InvalidName {
            name: name.to_string(),
        });
    }
    let linuxkit = linuxkit.ok_or(LinuxKitError::NotInstalled)?;
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| LinuxKitError::Io { path, error }
    };

    tokio::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(work_dir)
        .await
        .map_err(io_err(work_dir))?;
    let yml = work_dir.join(format!("{name}.yml"));
    write_private(&yml, content).await.map_err(io_err(&yml))?;
    // A leftover image from an earlier build would hide a build that
    // produced nothing.
    for suffix in OUTPUT_SUFFIXES {
        let old = work_dir.join(format!("{name}{suffix}"));
        match tokio::fs::remove_file(&old).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&old)(e)),
            _ => {}
        }
    }

    let mut cmd = tokio::process::Command::from(build_command(&linuxkit, &yml, name, work_dir));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = cmd.output().await.map_err(io_err(&linuxkit))?;
    if !output.status.success() {
        return Err(LinuxKitError::BuildFailed {
            name: name.to_string(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    find_built_image(work_dir, name).ok_or_else(|| LinuxKitError::OutputMissing {
        path: expected_output(work_dir, name),
    })
}

/// Writes `path` with mode 0600, also when it already existed with another
/// mode, because templates carry SSH keys.
async fn write_private(path: &Path, content: &str) -> io::Result<()> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .await?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .await?;
    file.write_all(content.as_bytes()).await?;
    file.flush().await
}

fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Serialises the crate's unit tests that set [`LINUXKIT_ENV`]: the
/// environment is process-global.
#[cfg(test)]
pub(crate) fn test_env_lock() -> std::sync::MutexGuard<'static, ()> {
    static ENV_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ENV_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::MutexGuard;

    fn env_lock() -> MutexGuard<'static, ()> {
        super::test_env_lock()
    }

    /// Runs a future on a private runtime, so the std mutex guard is never
    /// held across an `.await`.
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// Writes an executable shell script. Another test thread forking while the
    /// file is open for writing makes exec fail with ETXTBSY, so this waits
    /// until the script can be run.
    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("linuxkit");
        std::fs::write(
            &path,
            format!("#!/bin/sh\n[ \"$1\" = build ] || exit 0\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        for _ in 0..100 {
            match Command::new(&path).arg("probe").status() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                result => {
                    assert!(result.unwrap().success());
                    break;
                }
            }
        }
        path
    }

    #[test]
    fn build_command_has_exact_arguments() {
        let cmd = build_command(
            Path::new("/bin/lk"),
            Path::new("/w/vm.yml"),
            "vm",
            Path::new("/w"),
        );
        assert_eq!(cmd.get_program(), "/bin/lk");
        let args: Vec<_> = cmd.get_args().collect();
        assert_eq!(
            args,
            [
                "build",
                "--format",
                "iso-bios",
                "--name",
                "vm",
                "--dir",
                "/w",
                "/w/vm.yml"
            ]
        );
        assert_eq!(
            expected_output(Path::new("/w"), "vm"),
            Path::new("/w/vm.iso")
        );
    }

    #[test]
    fn validates_names() {
        for good in ["a", "core-dev", "A1.2_b-c", "9lives"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-x", ".hidden", "_x", "a/b", "../x", "a b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let err = block_on(build_iso_with(None, "", "../evil", tmp.path())).unwrap_err();
        assert!(matches!(err, LinuxKitError::InvalidName { .. }));
        assert!(err.to_string().contains("../evil"));
    }

    #[test]
    fn locate_searches_path_then_fallbacks() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            tmp.path().join("a"),
            tmp.path().join("b"),
            tmp.path().join("c"),
        );
        for dir in [&a, &b, &c] {
            std::fs::create_dir(dir).unwrap();
        }
        let not_exec = a.join("linuxkit");
        std::fs::write(&not_exec, "").unwrap();
        std::fs::create_dir(c.join("linuxkit")).unwrap();
        let fallback = script(&b, "exit 0");
        let path = std::env::join_paths([&a, &c]).unwrap();
        assert_eq!(
            locate(None, Some(path.clone()), &[&fallback]),
            Some(fallback.clone())
        );
        assert_eq!(locate(None, Some(path), &[&not_exec]), None);
        let path = std::env::join_paths([&a, &b]).unwrap();
        assert_eq!(locate(None, Some(path), &[]), Some(fallback.clone()));
        assert_eq!(locate(Some(not_exec.into()), None, &[&fallback]), None);
        assert_eq!(locate(Some("".into()), None, &[&fallback]), Some(fallback));
    }

    #[test]
    fn find_honours_explicit_env_var() {
        let _guard = env_lock();
        let tmp = tempfile::tempdir().unwrap();
        let fake = script(tmp.path(), "exit 0");
        std::env::set_var(LINUXKIT_ENV, &fake);
        let found = find_linuxkit();
        std::env::set_var(LINUXKIT_ENV, tmp.path().join("absent"));
        let absent = find_linuxkit();
        std::env::remove_var(LINUXKIT_ENV);
        assert_eq!(found, Some(fake));
        assert_eq!(absent, None);
    }

    #[test]
    fn build_iso_runs_linuxkit_and_returns_the_iso() {
        let _guard = env_lock();
        let tmp = tempfile::tempdir().unwrap();
        // The fake copies the YAML into the ISO, proving which file it was given.
        let fake = script(
            tmp.path(),
            "[ \"$2 $3 $4 $6\" = \"--format iso-bios --name --dir\" ] || exit 3\ncp \"$8\" \"$7/$5.iso\"",
        );
        let work = tmp.path().join("state/build");
        std::env::set_var(LINUXKIT_ENV, &fake);
        let result = block_on(build_iso("kernel: {}\n", "vm-1", &work));
        std::env::remove_var(LINUXKIT_ENV);
        let iso = result.unwrap();
        assert_eq!(iso, work.join("vm-1.iso"));
        assert_eq!(std::fs::read_to_string(&iso).unwrap(), "kernel: {}\n");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&work), 0o700);
        assert_eq!(mode(&work.join("vm-1.yml")), 0o600);
    }

    #[test]
    fn failing_build_reports_stderr() {
        let _guard = env_lock();
        let tmp = tempfile::tempdir().unwrap();
        let fake = script(tmp.path(), "echo 'pull failed: no such image' >&2\nexit 1");
        std::env::set_var(LINUXKIT_ENV, &fake);
        let result = block_on(build_iso("x", "vm", tmp.path()));
        std::env::remove_var(LINUXKIT_ENV);
        match result.unwrap_err() {
            LinuxKitError::BuildFailed {
                name,
                status,
                stderr,
            } => {
                assert_eq!((name.as_str(), status.code()), ("vm", Some(1)));
                assert_eq!(stderr, "pull failed: no such image");
            }
            other => panic!("unexpected error {other:?}"),
        }
    }

    #[test]
    fn built_image_is_found_under_the_names_go_container_tried() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        assert_eq!(find_built_image(d, "vm"), None);
        std::fs::write(d.join("vm.yml"), "kernel: {}\n").unwrap();
        std::fs::write(d.join("vm-efi.qcow2"), "q").unwrap();
        std::fs::write(d.join("other.iso"), "o").unwrap();
        // Only the directory scan finds this one.
        assert_eq!(find_built_image(d, "vm"), Some(d.join("vm-efi.qcow2")));
        std::fs::write(d.join("vm.raw"), "r").unwrap();
        assert_eq!(find_built_image(d, "vm"), Some(d.join("vm.raw")));
        std::fs::write(d.join("vm-bios.iso"), "b").unwrap();
        assert_eq!(find_built_image(d, "vm"), Some(d.join("vm-bios.iso")));
        std::fs::create_dir(d.join("vm.iso")).unwrap();
        assert_eq!(find_built_image(d, "vm"), Some(d.join("vm-bios.iso")));
        // A build leaving NAME-bios.iso (older linuxkit) is used.
        let work = d.join("work");
        let fake = script(d, "cp \"$8\" \"$7/$5-bios.iso\"");
        let built = block_on(build_iso_with(Some(fake), "kernel: {}\n", "vm", &work)).unwrap();
        assert_eq!(built, work.join("vm-bios.iso"));
    }

    #[test]
    fn successful_build_without_output_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let fake = script(tmp.path(), "exit 0");
        std::fs::write(tmp.path().join("vm.iso"), "stale").unwrap();
        let err = block_on(build_iso_with(Some(fake), "x", "vm", tmp.path())).unwrap_err();
        assert!(matches!(&err, LinuxKitError::OutputMissing { path } if path.ends_with("vm.iso")));
    }

    #[test]
    fn missing_binary_is_not_installed() {
        // PATH itself is left alone: other modules' tests spawn programs by
        // name concurrently, so the lookup gets an empty PATH directly.
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(locate(None, Some(tmp.path().into()), &[]), None);
        let err = block_on(build_iso_with(None, "x", "vm", tmp.path())).unwrap_err();
        assert!(matches!(err, LinuxKitError::NotInstalled));
        let msg = err.to_string();
        assert!(msg.contains("LinuxKit") && msg.contains("https://github.com/linuxkit/linuxkit"));

        // Through the public API: a wrong explicit path is not replaced by a
        // PATH search, so this holds whatever is installed on the machine.
        let _guard = env_lock();
        std::env::set_var(LINUXKIT_ENV, tmp.path().join("absent"));
        let result = block_on(build_iso("x", "vm", tmp.path()));
        std::env::remove_var(LINUXKIT_ENV);
        assert!(matches!(result, Err(LinuxKitError::NotInstalled)));
    }
}
