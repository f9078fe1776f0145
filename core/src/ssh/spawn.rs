//! A command in the guest as a live process: its streams stay open while it
//! runs, so output arrives as the guest produces it.
//!
//! The remote command line is fixed text of ours with every caller value
//! quoted (see [`wrapper`]). Before the command starts, the login shell the
//! SSH server runs prints a marker line with its PID, and then `exec`s the
//! command, which so keeps that PID. SSH servers start each session in a
//! session (and process group) of its own, so that PID names the group a
//! signal is sent to (`kill -SIG -PID` through another connection): ssh
//! has no portable way to signal a remote process (OpenSSH's server
//! ignores the protocol's `signal` request, Dropbear's client cannot send
//! it). The marker also says the command started, which tells a connection
//! turned away before authentication (retried) from a command's failure.

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

use super::route::Route;
use super::CONNECT_ATTEMPTS;
use super::{backoff, is_refused_before_auth, quote_remote, read_log, SshError, SshTarget};

/// Starts the marker line; `\x1e` (record separator) keeps it from being
/// mistaken for anything a shell profile prints.
const MARKER: &str = "\x1evmcontainer-spawn ";

/// Lines before the marker that are skipped (a noisy login shell) before
/// giving up.
const MAX_NOISE_LINES: usize = 64;

/// A started remote command.
#[derive(Debug)]
pub(crate) struct Launched {
    /// The local ssh process.
    pub child: Child,
    /// Its standard input (the command's).
    pub stdin: ChildStdin,
    /// The command's standard output (with a PTY: its terminal output).
    pub stdout: BufReader<ChildStdout>,
    /// The command's standard error (empty with a PTY).
    pub stderr: BufReader<ChildStderr>,
    /// The command's PID in the guest, also its process group.
    pub pid: u32,
    /// Its terminal in the guest, with a PTY.
    pub tty: Option<String>,
    /// The connection it holds until it ends.
    pub route: Route,
    /// ssh's own messages.
    pub log: tempfile::NamedTempFile,
}

/// What a remote command is given besides its argv.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Setting<'a> {
    /// `NAME=VALUE` pairs added to its environment.
    pub env: &'a [(String, String)],
    /// Its working directory.
    pub cwd: Option<&'a str>,
    /// The user it runs as (through `su`).
    pub user: Option<&'a str>,
    /// Whether a terminal name is reported (for resizing).
    pub tty: bool,
    /// The terminal's size to set first (columns, rows).
    pub size: Option<(u16, u16)>,
}

/// The remote command line running `cmd` with `s`, for a POSIX login
/// shell: `set -- [su -s /bin/sh -c 'exec "$@"' -- USER sh] [env K=V...]
/// CMD...`, the marker, `cd DIR`, and `exec "$@"` — through `setsid` when
/// the shell does not lead its own process group. (OpenSSH and Dropbear
/// start a session with a terminal in a session of its own, but Dropbear
/// runs a command without one in the process group of the connection,
/// which a signal to "the group" would take down.) Every value is quoted.
pub(crate) fn wrapper(cmd: &[String], s: Setting<'_>) -> String {
    let argv = setting_argv(cmd, s);
    let tty = if s.tty {
        r#""$(tty 2>/dev/null || echo -)""#
    } else {
        "-"
    };
    let mut line = format!(
        "set -- {}; g=; read -r _ _ _ _ g _ < /proc/$$/stat 2>/dev/null; ",
        quote_remote(&argv)
    );
    if s.tty {
        // ssh, whose own stdin is a pipe here, asks for the terminal with
        // no modes, and the server leaves it raw (no echo, no Ctrl-C):
        // the usual modes first, as `ssh -t` from a terminal would copy.
        line.push_str("stty sane");
        if let Some((cols, rows)) = s.size {
            line.push_str(&format!(" cols {cols} rows {rows}"));
        }
        line.push_str(" 2>/dev/null; ");
    }
    line.push_str(&format!(
        r#"printf '\036vmcontainer-spawn %s %s\n' "$$" {tty} >&2 && "#
    ));
    if let Some(dir) = s.cwd {
        line.push_str(&format!("cd {} && ", quote_remote(&[dir.to_string()])));
    }
    line.push_str(
        r#"if [ "$g" = "$$" ] || ! command -v setsid >/dev/null; then exec "$@"; else exec setsid "$@"; fi"#,
    );
    line
}

/// `cmd` behind `su` (for a user) and `env` (for an environment).
fn setting_argv(cmd: &[String], s: Setting<'_>) -> Vec<String> {
    let mut argv: Vec<String> = Vec::new();
    if let Some(u) = s.user {
        // `--` before the user: su's getopt would take a `-c` of the
        // command as its own.
        argv.extend(["su", "-s", "/bin/sh", "-c", r#"exec "$@""#, "--", u, "sh"].map(String::from));
    }
    if !s.env.is_empty() {
        argv.push("env".into());
        argv.extend(s.env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    argv.extend(cmd.iter().cloned());
    argv
}

/// An argv that runs `cmd` with `s` applied (not its `tty`) through `sh
/// -c`, for a transport that takes an argv (the guest agent, an
/// interactive ssh session); `cmd` itself when nothing is to be applied.
pub(crate) fn setting_command(cmd: &[String], s: Setting<'_>) -> Vec<String> {
    if s.env.is_empty() && s.cwd.is_none() && s.user.is_none() {
        return cmd.to_vec();
    }
    let mut script = String::new();
    if let Some(dir) = s.cwd {
        script.push_str(&format!("cd {} && ", quote_remote(&[dir.to_string()])));
    }
    script.push_str("exec ");
    script.push_str(&quote_remote(&setting_argv(cmd, s)));
    vec!["sh".into(), "-c".into(), script]
}

/// The remote command line sending `sig` to the process group `pid` leads
/// (or, in a guest without `setsid`, to the process alone).
pub(crate) fn kill_line(sig: i32, pid: u32) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        r#"kill -"$0" -"$1" 2>/dev/null || kill -"$0" "$1""#.into(),
        sig.to_string(),
        pid.to_string(),
    ]
}

/// Parses the marker line: PID and terminal.
fn parse_marker(line: &str) -> Option<(u32, Option<String>)> {
    let rest = line.strip_prefix(MARKER)?.trim_end();
    let (pid, tty) = rest.split_once(' ')?;
    let pid = pid.parse().ok().filter(|p| *p > 1)?;
    let tty = (tty.starts_with("/dev/")).then(|| tty.to_string());
    Some((pid, tty))
}

impl SshTarget {
    /// Starts `line` (from [`wrapper`]) and returns once the command runs
    /// in the guest. `tty` asks for a pseudo-terminal (`-tt`: one even
    /// though our stdin is a pipe); `forward_agent` forwards the caller's
    /// SSH agent, on a connection of its own. No escape character: `~.`
    /// in the input is data, not a request to disconnect.
    pub(crate) async fn launch(
        &self,
        line: &str,
        tty: bool,
        forward_agent: bool,
    ) -> Result<Launched, SshError> {
        let remote = self.remote_line(line.to_string()).await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let route = if forward_agent {
                Route::Direct
            } else {
                self.route().await
            };
            let log = self.log_file()?;
            let shared = matches!(route, Route::Shared { .. });
            let mut args = vec!["-E".to_string(), log.path().to_string_lossy().into_owned()];
            if forward_agent {
                args.push("-A".into());
            }
            args.extend(self.base_args("yes", &self.known_hosts, shared)?);
            args.extend(["-o", "ControlMaster=no", "-e", "none"].map(String::from));
            args.push(if tty { "-tt" } else { "-T" }.into());
            args.extend(["127.0.0.1".into(), "--".into(), remote.clone()]);
            let mut child = Command::new("ssh")
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| self.io(e))?;
            let stdin = child.stdin.take().expect("stdin is piped");
            let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
            let mut stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
            // With a PTY the marker (written to stderr) comes through the
            // terminal, on stdout.
            let found = if tty {
                read_marker(&mut stdout).await
            } else {
                read_marker(&mut stderr).await
            };
            if let Some((pid, tty)) = found {
                return Ok(Launched {
                    child,
                    stdin,
                    stdout,
                    stderr,
                    pid,
                    tty,
                    route,
                    log,
                });
            }
            drop(stdin);
            let status = child.wait().await.map_err(|e| self.io(e))?;
            let mut detail = read_log(&log, b"");
            if is_refused_before_auth(&detail) && attempt < CONNECT_ATTEMPTS {
                backoff(attempt).await;
                continue;
            }
            if detail.is_empty() {
                detail = format!(
                    "the remote shell ended ({status}) before starting the command; it needs a POSIX `sh` with `printf`, `cd` and `exec`"
                );
            }
            return Err(SshError::Failed {
                port: self.port,
                route: route.describe(self),
                detail,
            });
        }
    }
}

/// Reads lines until the marker; `None` at the end of the stream.
async fn read_marker<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
) -> Option<(u32, Option<String>)> {
    let mut line = Vec::new();
    for _ in 0..MAX_NOISE_LINES {
        line.clear();
        match r.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        if let Some(m) = text.find(MARKER).and_then(|i| parse_marker(&text[i..])) {
            return Some(m);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a wrapper line with the local `sh`, as the guest's login shell
    /// would.
    fn run_locally(line: &str) -> (String, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn wrapper_reports_its_pid_and_passes_values_intact() {
        let env = vec![("GREETING".to_string(), "it's $HOME; `x`".to_string())];
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().join("a b'c");
        std::fs::create_dir(&cwd).unwrap();
        let cwd = cwd.to_str().unwrap();
        let cmd = [
            "sh",
            "-c",
            r#"printf '%s|%s|%s' "$GREETING" "$(pwd)" "$1""#,
            "x",
            "; rm -rf /",
        ]
        .map(String::from);
        let line = wrapper(
            &cmd,
            Setting {
                env: &env,
                cwd: Some(cwd),
                ..Default::default()
            },
        );
        let (out, err) = run_locally(&line);
        assert_eq!(out, format!("it's $HOME; `x`|{cwd}|; rm -rf /"));
        let (pid, tty) = parse_marker(&err).expect("marker on stderr");
        assert!(pid > 1);
        assert_eq!(tty, None);
    }

    #[test]
    fn a_missing_directory_stops_before_the_command() {
        let line = wrapper(
            &["echo".into(), "ran".into()],
            Setting {
                cwd: Some("/nonexistent dir"),
                ..Default::default()
            },
        );
        let (out, err) = run_locally(&line);
        assert_eq!(out, "");
        assert!(err.contains("nonexistent dir"), "{err}");
    }
}
