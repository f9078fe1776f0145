//! `dev claude`: Claude Code in the dev VM, on the project at `/app`, with
//! the caller's chosen credentials forwarded and nothing else.
//!
//! - `anthropic`: `ANTHROPIC_API_KEY` from the caller's environment.
//! - `gh`: the GitHub CLI's config directory (`$GH_CONFIG_DIR`, else
//!   `$XDG_CONFIG_HOME/gh`, else `~/.config/gh`) copied to
//!   `/root/.config/gh`.
//! - `ssh`: the SSH agent (`SSH_AUTH_SOCK`), forwarded by ssh.
//! - `git`: `git config user.name` / `user.email` as `GIT_AUTHOR_*` and
//!   `GIT_COMMITTER_*`.
//!
//! Keys and tokens travel through ssh's standard input into a private file
//! the session sources and deletes; they never appear on a command line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::devops::{project_dir, BootOptions, DevOps};
use super::guest::{self, env_file, session_command, staged_env_path, valid_env_name, GuestFile};
use super::shell::agent_available;
use crate::error::{Error, Result};
use crate::ssh::quote_remote;

/// Largest file copied from the gh config directory.
const MAX_GH_FILE: u64 = 1 << 20;

/// A kind of credential `claude` can forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Auth {
    /// `ANTHROPIC_API_KEY`.
    Anthropic,
    /// The GitHub CLI's config directory.
    Gh,
    /// The SSH agent.
    Ssh,
    /// Git author and committer identity.
    Git,
}

impl Auth {
    /// Every kind, the default selection.
    pub const ALL: [Auth; 4] = [Auth::Anthropic, Auth::Gh, Auth::Ssh, Auth::Git];

    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Auth::Anthropic => "anthropic",
            Auth::Gh => "gh",
            Auth::Ssh => "ssh",
            Auth::Git => "git",
        }
    }
}

impl fmt::Display for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Auth {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "anthropic" => Ok(Auth::Anthropic),
            "gh" | "github" => Ok(Auth::Gh),
            "ssh" => Ok(Auth::Ssh),
            "git" => Ok(Auth::Git),
            _ => Err(Error::invalid(
                "auth",
                s,
                "expected anthropic, gh, ssh or git",
            )),
        }
    }
}

/// How to run Claude.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaudeOptions {
    /// Project directory (default: the current directory).
    pub project: Option<PathBuf>,
    /// `--model` for claude.
    pub model: Option<String>,
    /// Credentials to forward; `None` means all of them.
    pub auth: Option<Vec<Auth>>,
    /// Extra environment for the session (e.g. `PATH`); staged like the
    /// credentials.
    pub env: Vec<(String, String)>,
    /// Further arguments for claude.
    pub args: Vec<String>,
    /// How to boot the dev VM when it is not running.
    pub boot: BootOptions,
    /// The session's streams (default: this process's).
    pub io: crate::session::SessionIo,
}

/// What a claude session will receive. Its `Debug` shows names only, never
/// values or file contents, so logging it leaks nothing.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// Credentials that are available and selected.
    pub auth: Vec<Auth>,
    /// Environment to stage (secrets included).
    pub env: BTreeMap<String, String>,
    /// Files to place in the guest.
    pub files: Vec<GuestFile>,
    /// Whether to forward the SSH agent.
    pub agent: bool,
}

impl fmt::Debug for Forwarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarded")
            .field("auth", &self.auth)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field(
                "files",
                &self.files.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .field("agent", &self.agent)
            .finish()
    }
}

/// The GitHub CLI's config directory on this host.
fn gh_config_dir() -> Option<PathBuf> {
    let var = |k| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("GH_CONFIG_DIR")
        .or_else(|| var("XDG_CONFIG_HOME").map(|d| d.join("gh")))
        .or_else(|| var("HOME").map(|h| h.join(".config").join("gh")))
}

/// `git config <key>` in `dir`, if set.
fn git_config(dir: &Path, key: &str) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["config", "--get", key])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let v = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// Regular files directly in `dir`, as guest files under `guest_dir`.
fn copy_dir_files(dir: &Path, guest_dir: &str) -> Vec<GuestFile> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<GuestFile> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| e.metadata().is_ok_and(|m| m.len() <= MAX_GH_FILE))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            crate::sources::download::safe_file_name(&name, "gh config").ok()?;
            let bytes = crate::regular_file::read(&e.path(), MAX_GH_FILE).ok()?;
            Some((format!("{guest_dir}/{name}"), bytes))
        })
        .collect();
    files.sort();
    files
}

/// Works out what to forward for `selection` from this host, for a project
/// in `project`.
pub fn forwarded_auth(project: &Path, selection: Option<&[Auth]>) -> Forwarded {
    let selection = selection.unwrap_or(&Auth::ALL);
    let mut f = Forwarded::default();
    for a in Auth::ALL {
        if !selection.contains(&a) {
            continue;
        }
        let used = match a {
            Auth::Anthropic => match std::env::var("ANTHROPIC_API_KEY") {
                Ok(k) if !k.is_empty() => {
                    f.env.insert("ANTHROPIC_API_KEY".into(), k);
                    true
                }
                _ => false,
            },
            Auth::Gh => {
                let files = gh_config_dir()
                    .map(|d| copy_dir_files(&d, "/root/.config/gh"))
                    .unwrap_or_default();
                let used = !files.is_empty();
                f.files.extend(files);
                used
            }
            Auth::Ssh => {
                f.agent = agent_available();
                f.agent
            }
            Auth::Git => {
                let name = git_config(project, "user.name");
                let email = git_config(project, "user.email");
                if let Some(n) = &name {
                    f.env.insert("GIT_AUTHOR_NAME".into(), n.clone());
                    f.env.insert("GIT_COMMITTER_NAME".into(), n.clone());
                }
                if let Some(e) = &email {
                    f.env.insert("GIT_AUTHOR_EMAIL".into(), e.clone());
                    f.env.insert("GIT_COMMITTER_EMAIL".into(), e.clone());
                }
                name.is_some() || email.is_some()
            }
        };
        if used {
            f.auth.push(a);
        }
    }
    f
}

impl DevOps {
    /// Runs Claude Code in the dev VM (booting it with `opts.boot` if it is
    /// not running) on the project at `/app`, attached to the terminal;
    /// returns its exit code.
    pub async fn claude(&self, opts: ClaudeOptions) -> Result<i32> {
        let project = project_dir(opts.project.as_deref())?;
        let c = match self.running().await {
            Ok(c) => c,
            Err(Error::Devenv(super::DevenvError::NotRunning)) => {
                self.boot(BootOptions {
                    project: Some(project.clone()),
                    ..opts.boot.clone()
                })
                .await?
            }
            Err(e) => return Err(e),
        };
        let dir = self.guest_project(&c, Some(&project)).await?;
        self.ensure_mounted(&c).await?;
        // Runs `git config` and reads files: a blocking thread's work.
        let (proj, auth) = (project.clone(), opts.auth.clone());
        let mut fwd = tokio::task::spawn_blocking(move || forwarded_auth(&proj, auth.as_deref()))
            .await
            .map_err(|e| Error::io("collect credentials", &project, std::io::Error::other(e)))?;
        for (k, v) in &opts.env {
            if !valid_env_name(k) {
                return Err(Error::invalid(
                    "environment variable name",
                    k,
                    "use [A-Za-z_][A-Za-z0-9_]*",
                ));
            }
            fwd.env.insert(k.clone(), v.clone());
        }
        let env_path = staged_env_path();
        let mut files = fwd.files.clone();
        files.push((env_path.clone(), env_file(&fwd.env)?.into_bytes()));
        guest::run_script(
            self.manager(),
            &c.id,
            "staging credentials",
            &guest::stage_script(&files)?,
        )
        .await?;
        let mut argv = vec!["claude".to_string()];
        if let Some(m) = &opts.model {
            argv.extend(["--model".to_string(), m.clone()]);
        }
        argv.extend(opts.args.iter().cloned());
        let command = format!("exec {}", quote_remote(&argv));
        let remote = session_command(Some(&env_path), &dir, &command);
        self.manager()
            .exec_interactive_agent(&c.id, &remote, opts.io.is_terminal(), fwd.agent, &opts.io)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_names() {
        assert_eq!("ANTHROPIC".parse::<Auth>().unwrap(), Auth::Anthropic);
        assert_eq!("github".parse::<Auth>().unwrap(), Auth::Gh);
        assert!("aws"
            .parse::<Auth>()
            .unwrap_err()
            .to_string()
            .contains("aws"));
        assert_eq!(
            Auth::ALL.map(Auth::as_str),
            ["anthropic", "gh", "ssh", "git"]
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let mut f = Forwarded::default();
        f.env.insert("ANTHROPIC_API_KEY".into(), "sk-secret".into());
        f.files
            .push(("/root/.config/gh/hosts.yml".into(), b"gho_secret".to_vec()));
        let d = format!("{f:?}");
        assert!(
            d.contains("ANTHROPIC_API_KEY") && d.contains("hosts.yml"),
            "{d}"
        );
        assert!(!d.contains("sk-secret") && !d.contains("gho_secret"), "{d}");
    }

    #[test]
    fn gh_files_are_copied_flat_and_safely() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("hosts.yml"), "token: x").unwrap();
        std::fs::write(d.path().join(".hidden"), "no").unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let files = copy_dir_files(d.path(), "/root/.config/gh");
        assert_eq!(
            files,
            vec![(
                "/root/.config/gh/hosts.yml".to_string(),
                b"token: x".to_vec()
            )]
        );
    }
}
