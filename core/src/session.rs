//! The standard streams of an interactive session in a guest (a dev
//! shell, tests, Claude, the serial console): this process's own by
//! default, or file descriptors a caller hands over (a C program's pipe, a
//! Go program's `io.Reader` turned into a pipe).

use std::io::IsTerminal;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;

/// Where a session's stdin, stdout and stderr go. `None` means this
/// process's own stream. The descriptors are owned (shared by clones) and
/// closed when the last clone is dropped; each session gets duplicates.
#[derive(Debug, Clone, Default)]
pub struct SessionIo {
    /// Standard input.
    pub stdin: Option<Arc<OwnedFd>>,
    /// Standard output.
    pub stdout: Option<Arc<OwnedFd>>,
    /// Standard error.
    pub stderr: Option<Arc<OwnedFd>>,
}

impl PartialEq for SessionIo {
    fn eq(&self, other: &Self) -> bool {
        let raw = |f: &Option<Arc<OwnedFd>>| f.as_ref().map(|f| f.as_raw_fd());
        raw(&self.stdin) == raw(&other.stdin)
            && raw(&self.stdout) == raw(&other.stdout)
            && raw(&self.stderr) == raw(&other.stderr)
    }
}

impl Eq for SessionIo {}

impl SessionIo {
    /// This process's own streams.
    pub fn inherit() -> Self {
        Self::default()
    }

    /// The given descriptors (each `None` inherits).
    pub fn new(stdin: Option<OwnedFd>, stdout: Option<OwnedFd>, stderr: Option<OwnedFd>) -> Self {
        SessionIo {
            stdin: stdin.map(Arc::new),
            stdout: stdout.map(Arc::new),
            stderr: stderr.map(Arc::new),
        }
    }

    /// Whether the session has a terminal on both stdin and stdout, so a
    /// pseudo-terminal is worth asking for.
    pub fn is_terminal(&self) -> bool {
        let term = |f: &Option<Arc<OwnedFd>>, own: bool| match f {
            Some(fd) => fd.as_fd().is_terminal(),
            None => own,
        };
        term(&self.stdin, std::io::stdin().is_terminal())
            && term(&self.stdout, std::io::stdout().is_terminal())
    }

    /// A child's stdin, stdout and stderr for this session (duplicates of
    /// the descriptors, so the session's own stay open).
    pub fn stdio(&self) -> std::io::Result<(Stdio, Stdio, Stdio)> {
        let one = |f: &Option<Arc<OwnedFd>>| -> std::io::Result<Stdio> {
            Ok(match f {
                Some(fd) => Stdio::from(fd.try_clone()?),
                None => Stdio::inherit(),
            })
        };
        Ok((one(&self.stdin)?, one(&self.stdout)?, one(&self.stderr)?))
    }

    /// A readable duplicate of stdin, or `None` for this process's own.
    pub fn input(&self) -> std::io::Result<Option<std::fs::File>> {
        self.stdin
            .as_ref()
            .map(|fd| fd.try_clone().map(std::fs::File::from))
            .transpose()
    }

    /// A writable duplicate of stdout, or `None` for this process's own.
    pub fn output(&self) -> std::io::Result<Option<std::fs::File>> {
        self.stdout
            .as_ref()
            .map(|fd| fd.try_clone().map(std::fs::File::from))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn pipes_are_used_and_not_terminals() {
        let (r, w) = std::io::pipe().unwrap();
        let io = SessionIo::new(None, Some(OwnedFd::from(w)), None);
        assert!(!io.is_terminal());
        assert_eq!(io, io.clone());
        assert_ne!(io, SessionIo::inherit());
        let mut out = io.output().unwrap().unwrap();
        out.write_all(b"hi").unwrap();
        drop(out);
        drop(io);
        let mut got = String::new();
        let mut r = r;
        r.read_to_string(&mut got).unwrap();
        assert_eq!(got, "hi");
    }
}
