//! Shell snippets the dev environment runs in the guest, and the way
//! secrets get there: through ssh's standard input, never a command line.
//!
//! A session that needs environment variables (API keys, git identity,
//! `.core/test.yaml` `env`) first *stages* them: one non-interactive exec
//! whose stdin is a script that writes a private (0600) env file in the
//! guest. The interactive command then sources that file and deletes it
//! before running anything else. The only thing on any command line is the
//! file's random name.

use std::collections::BTreeMap;
use std::path::Path;

use super::{DevenvError, GUEST_PROJECT_DIR};
use crate::error::{Error, Result};
use crate::manager::LinuxKitManager;
use crate::ssh::quote_remote;

/// Quotes one word for the guest's POSIX shell.
pub(crate) fn sh_quote(s: &str) -> String {
    quote_remote(&[s.to_string()])
}

/// Makes `/app` show the project shared over 9p (tag `app`). A guest whose
/// init already mounted the tag elsewhere gets a bind mount of it (a 9p
/// channel serves one mount); otherwise the tag is mounted directly.
/// Idempotent.
pub(crate) fn mount_script() -> String {
    let app = GUEST_PROJECT_DIR;
    format!(
        r#"set -e
if awk -v d={app} '$2 == d {{ f = 1 }} END {{ exit !f }}' /proc/mounts; then exit 0; fi
mkdir -p {app}
src=$(awk '$1 == "app" && $3 == "9p" {{ print $2; exit }}' /proc/mounts)
if [ -n "$src" ]; then
  mount --bind "$src" {app}
else
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 app {app}
fi
# Projects shared after boot (absent from VMs booted without the share).
if ! awk -v d={slots} '$2 == d {{ f = 1 }} END {{ exit !f }}' /proc/mounts; then
  mkdir -p {slots}
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 {tag} {slots} 2>/dev/null || rmdir {slots} 2>/dev/null || true
fi
"#,
        slots = super::devops::GUEST_SLOTS_DIR,
        tag = super::devops::GUEST_SLOTS_DIR
            .rsplit('/')
            .next()
            .unwrap_or_default(),
    )
}

/// Whether `name` can be an environment variable name in a POSIX shell.
pub(crate) fn valid_env_name(name: &str) -> bool {
    let mut c = name.chars();
    matches!(c.next(), Some(f) if f == '_' || f.is_ascii_alphabetic())
        && c.all(|x| x == '_' || x.is_ascii_alphanumeric())
}

/// `export K='v'` lines for `vars`, checking the names.
pub(crate) fn env_file(vars: &BTreeMap<String, String>) -> Result<String> {
    let mut out = String::new();
    for (k, v) in vars {
        if !valid_env_name(k) {
            return Err(Error::invalid(
                "environment variable name",
                k,
                "use [A-Za-z_][A-Za-z0-9_]*",
            ));
        }
        out.push_str(&format!("export {k}={}\n", sh_quote(v)));
    }
    Ok(out)
}

/// Minimal base64 (standard alphabet, padded): the payload of the staging
/// script, so any bytes survive a heredoc.
pub(crate) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4 + data.len() / 57 + 1);
    for (i, c) in data.chunks(3).enumerate() {
        if i > 0 && i % 19 == 0 {
            out.push('\n'); // 76-column lines, as base64 -d expects at most
        }
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for j in 0..4 {
            if j <= c.len() {
                out.push(A[(n >> (18 - 6 * j)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.push('\n');
    out
}

/// A random guest path for a staged env file.
pub(crate) fn staged_env_path() -> String {
    let mut b = [0u8; 12];
    let _ = getrandom::fill(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("/tmp/.vmcontainer-env-{hex}")
}

/// A file to place in the guest: (absolute guest path, content).
pub(crate) type GuestFile = (String, Vec<u8>);

/// The staging script: writes each file (0600, parent directories 0700)
/// from base64 heredocs. Paths must be absolute and plain.
pub(crate) fn stage_script(files: &[GuestFile]) -> Result<String> {
    let mut s = String::from("set -e\numask 077\n");
    for (path, content) in files {
        if !path.starts_with('/') || path.contains("/../") || path.contains('\n') {
            return Err(Error::invalid(
                "guest path",
                path,
                "must be absolute and plain",
            ));
        }
        let q = sh_quote(path);
        let parent = Path::new(path)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        s.push_str(&format!(
            "mkdir -p {}\nbase64 -d > {q} <<'VMCONTAINER_EOF'\n{}VMCONTAINER_EOF\n",
            sh_quote(&parent),
            base64(content)
        ));
    }
    Ok(s)
}

/// Runs `script` in the guest through `sh -s`, the script on stdin.
pub(crate) async fn run_script(
    manager: &LinuxKitManager,
    id: &str,
    what: &'static str,
    script: &str,
) -> Result<()> {
    let out = manager
        .exec_with_input(id, &["sh".into(), "-s".into()], script.as_bytes())
        .await?;
    if out.exit_code != 0 {
        return Err(DevenvError::GuestCommand {
            what,
            code: out.exit_code,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    Ok(())
}

/// The remote argv of a session: source and delete the staged env file (if
/// any), enter the project's directory, run the shell command line
/// `command`. A project shared after boot is first bind-mounted on `/app`
/// in a mount namespace private to this session (`unshare -m`), so
/// sessions from other projects keep theirs.
pub(crate) fn session_command(
    env_path: Option<&str>,
    project: &super::devops::GuestProject,
    command: &str,
) -> Vec<String> {
    let mut script = String::new();
    if let Some(src) = &project.bind {
        script.push_str(&format!(
            "mount --bind {} {} || exit 1; ",
            sh_quote(src),
            sh_quote(GUEST_PROJECT_DIR)
        ));
    }
    if let Some(p) = env_path {
        let q = sh_quote(p);
        script.push_str(&format!(". {q}; rm -f {q}; "));
    }
    script.push_str(&format!(
        "cd {} || exit 1; {command}",
        sh_quote(&project.dir)
    ));
    let mut argv = Vec::new();
    if project.bind.is_some() {
        argv.extend(["unshare".into(), "-m".into()]);
    }
    argv.extend(["sh".into(), "-c".into(), script]);
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "\n");
        assert_eq!(base64(b"f"), "Zg==\n");
        assert_eq!(base64(b"fo"), "Zm8=\n");
        assert_eq!(base64(b"foo"), "Zm9v\n");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy\n");
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let enc = base64(&data);
        assert!(enc.lines().all(|l| l.len() <= 76));
        // Cross-check with the system's decoder.
        let mut child = std::process::Command::new("base64")
            .arg("-d")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(enc.as_bytes())
            .unwrap();
        assert_eq!(child.wait_with_output().unwrap().stdout, data);
    }

    #[test]
    fn env_files_quote_values_and_check_names() {
        let mut v = BTreeMap::new();
        v.insert("A".to_string(), "it's $HOME; `x`".to_string());
        v.insert("B_2".to_string(), "".to_string());
        let f = env_file(&v).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{f}printf '%s|%s' \"$A\" \"$B_2\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's $HOME; `x`|");
        v.insert("1BAD".into(), "x".into());
        assert!(env_file(&v).unwrap_err().to_string().contains("1BAD"));
        assert!(valid_env_name("_x1") && !valid_env_name("a-b") && !valid_env_name(""));
    }

    #[test]
    fn staging_writes_private_files_locally_too() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("sub dir/secret.env");
        let files = vec![(target.display().to_string(), b"line1\nit's\0bin".to_vec())];
        let script = stage_script(&files).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"line1\nit's\0bin");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(stage_script(&[("rel".into(), vec![])]).is_err());
    }

    #[test]
    fn session_sources_then_deletes_the_env_file() {
        let d = tempfile::tempdir().unwrap();
        let env = d.path().join("e");
        std::fs::write(&env, "export GREETING='hi there'\n").unwrap();
        let project = super::super::devops::GuestProject {
            dir: d.path().to_str().unwrap().into(),
            bind: None,
        };
        let argv = session_command(
            Some(env.to_str().unwrap()),
            &project,
            "echo \"$GREETING\" && pwd",
        );
        let out = std::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("hi there\n"), "{text}");
        assert!(!env.exists(), "env file must be deleted after sourcing");
        // The secret is not in the argv.
        assert!(!argv.join(" ").contains("hi there"));
        // A project shared after boot is bound on /app in a namespace of
        // the session's own.
        let bound = super::super::devops::GuestProject {
            dir: "/app".into(),
            bind: Some("/mnt/dev-projects/ab12".into()),
        };
        let argv = session_command(None, &bound, "pwd");
        assert_eq!(argv[..4], ["unshare", "-m", "sh", "-c"]);
        assert_eq!(
            argv[4],
            "mount --bind /mnt/dev-projects/ab12 /app || exit 1; cd /app || exit 1; pwd"
        );
    }
}
