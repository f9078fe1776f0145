//! `copy_to` and `copy_from`: `docker cp` between the host and a running
//! container, over the guest agent or SSH (see [`crate::copy`]).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::exec::{falls_back, DEFAULT_READY_TIMEOUT};
use super::transport::{Reached, AGENT_CALL_TIMEOUT};
use super::LinuxKitManager;
use crate::container::{Container, Status};
use crate::copy::chunks::{chunk_reader, chunk_writer};
use crate::copy::probe::{GuestStat, SCRIPT};
use crate::copy::{self, build_archive, extract_archive, CopyError, CopyOptions, Kind, Placement};
use crate::error::{Error, Result};
use crate::qga::data_port::{Put, PutError};
use crate::qga::{Agent, ExecRequest, QgaError, Session};
use crate::ssh::{ExecOutput, SshTarget};
use crate::transport::Transport;

/// Bytes per agent file call. Larger chunks gain nothing (measured: the
/// same rate from 256 KiB to 4 MiB, as the agent's JSON parsing, not the
/// round trip, limits it) and make each call slower in a busy guest.
const CHUNK: usize = 256 << 10;
/// Deadline of one agent file call (a chunk can take seconds in a busy,
/// emulated guest).
const FILE_CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a copy keeps the agent before it lets other callers in between
/// two chunks.
const RELAX: Duration = Duration::from_millis(250);
/// Agent commands a copy needs.
const AGENT_COMMANDS: [&str; 6] = [
    "guest-exec",
    "guest-exec-status",
    "guest-file-open",
    "guest-file-read",
    "guest-file-write",
    "guest-file-close",
];

/// The guest side of a copy, reached one way.
enum Guest {
    Agent(Agent),
    Ssh(SshTarget),
}

impl Guest {
    async fn run(&self, argv: &[String]) -> Result<ExecOutput> {
        match self {
            Guest::Agent(a) => {
                let st = a
                    .run(ExecRequest { argv, input: None }, AGENT_CALL_TIMEOUT)
                    .await?;
                Ok(ExecOutput {
                    exit_code: st.exit_code.or(st.signal.map(|s| 128 + s)).unwrap_or(255),
                    stdout: st.stdout,
                    stderr: st.stderr,
                })
            }
            Guest::Ssh(t) => Ok(t.exec(argv).await?),
        }
    }

    /// Runs `sh -c script sh args...`; a failure names `location`.
    async fn sh(&self, script: &str, args: &[&str], location: &str) -> Result<String> {
        let mut argv: Vec<String> = vec!["sh".into(), "-c".into(), script.into(), "sh".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = self.run(&argv).await?;
        if out.exit_code != 0 {
            return Err(CopyError::Guest {
                location: location.into(),
                message: format!(
                    "{} (exit code {})",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    out.exit_code
                ),
            }
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Type, mode, owner and mtime of guest paths (`L`: do not follow a
    /// final symlink, `F`: follow).
    async fn stat(&self, paths: &[(&str, &str)], location: &str) -> Result<Vec<GuestStat>> {
        let args: Vec<&str> = paths.iter().flat_map(|(f, p)| [*f, *p]).collect();
        let out = self.sh(SCRIPT, &args, location).await?;
        let stats: Vec<GuestStat> = out.lines().filter_map(GuestStat::parse).collect();
        if stats.len() != paths.len() {
            return Err(CopyError::Guest {
                location: location.into(),
                message: format!("unexpected answer from the guest's sh: {}", out.trim()),
            }
            .into());
        }
        Ok(stats)
    }

    /// Best-effort removal of a temporary guest file.
    async fn remove(&self, path: &str) {
        let _ = self.run(&["rm".into(), "-f".into(), path.into()]).await;
    }
}

/// A copy's turn at the agent, released every [`RELAX`] between chunks.
struct AgentConn<'a> {
    agent: &'a Agent,
    session: Option<Session>,
}

impl<'a> AgentConn<'a> {
    fn new(agent: &'a Agent) -> Self {
        AgentConn {
            agent,
            session: None,
        }
    }

    async fn get(&mut self) -> Result<&mut Session, QgaError> {
        if self.session.is_none() {
            let s = self
                .agent
                .connect(Instant::now() + FILE_CALL_TIMEOUT)
                .await?;
            self.session = Some(s);
        }
        Ok(self.session.as_mut().expect("connected above"))
    }

    fn relax(&mut self) {
        if self.session.as_ref().is_some_and(|s| s.age() >= RELAX) {
            self.session = None;
        }
    }
}

impl LinuxKitManager {
    /// Copies host `host_path` into the running container at `guest_path`
    /// with `docker cp` semantics (see [`crate::copy`]): files and
    /// directories, `/.` for a directory's contents, a trailing `/` for a
    /// destination that must be a directory. Over the guest agent (no SSH
    /// key needed) when it answers and allows file access and `guest-exec`,
    /// else SSH; the guest needs `sh` and `tar`.
    pub async fn copy_to(
        &self,
        reference: &str,
        host_path: &Path,
        guest_path: &str,
        opts: &CopyOptions,
    ) -> Result<()> {
        let (c, dst, dst_at) = self.copy_endpoint(reference, guest_path).await?;
        let src = host_string(host_path)?;
        let src_kind = host_kind(Path::new(&src), copy::names_directory(&src));
        if src_kind == Kind::Missing {
            return Err(CopyError::NotFound { location: src }.into());
        }
        let mut guest = self.copy_guest(&c, opts.transport).await?;
        let parent = copy::parent(&dst);
        let st = self
            .stat_with_fallback(
                &c,
                opts.transport,
                &mut guest,
                &[("F", copy::trimmed(&dst)), ("F", &parent)],
                &dst_at,
            )
            .await?;
        let placement = copy::place(
            &src,
            src_kind,
            &dst,
            st[0].kind,
            st[1].kind == Kind::Dir,
            &src,
            &dst_at,
        )?;
        let from = Path::new(copy::trimmed(&src));
        match (&guest, src_kind, placement.name.as_deref()) {
            (Guest::Agent(a), Kind::File, Some(name)) => {
                agent_put_file(&guest, a, from, &placement.dir, name, opts.archive, &dst_at).await
            }
            (Guest::Agent(a), ..) => {
                agent_put_archive(&guest, a, from, &placement, opts.archive, &dst_at).await
            }
            (Guest::Ssh(t), ..) => {
                ssh_put_archive(t, from, &placement, opts.archive, &dst_at).await
            }
        }
    }

    /// The running container `reference`, `guest_path` made absolute, and
    /// the two as `ID:PATH` for messages; a container that is not running
    /// is an error naming that location.
    async fn copy_endpoint(
        &self,
        reference: &str,
        guest_path: &str,
    ) -> Result<(Container, String, String)> {
        let c = self.get_async(reference).await?;
        let path = guest_absolute(guest_path);
        let at = format!("{}:{path}", c.id);
        if c.status != Status::Running {
            return Err(CopyError::NotRunning {
                id: c.id,
                location: at,
            }
            .into());
        }
        Ok((c, path, at))
    }

    /// Copies `guest_path` from the running container to host `host_path`,
    /// with the semantics of [`Self::copy_to`]. Owners are kept with
    /// `archive` only when this process runs as root.
    pub async fn copy_from(
        &self,
        reference: &str,
        guest_path: &str,
        host_path: &Path,
        opts: &CopyOptions,
    ) -> Result<()> {
        let (c, src, src_at) = self.copy_endpoint(reference, guest_path).await?;
        let dst = host_string(host_path)?;
        let mut guest = self.copy_guest(&c, opts.transport).await?;
        let follow = if copy::names_directory(&src) {
            "F"
        } else {
            "L"
        };
        let st = self
            .stat_with_fallback(
                &c,
                opts.transport,
                &mut guest,
                &[(follow, copy::trimmed(&src))],
                &src_at,
            )
            .await?[0];
        let dst_kind = host_kind(Path::new(copy::trimmed(&dst)), true);
        let parent_is_dir = Path::new(&copy::parent(&dst)).is_dir();
        let placement = copy::place(&src, st.kind, &dst, dst_kind, parent_is_dir, &src_at, &dst)?;
        let owners = opts.archive && nix::unistd::geteuid().is_root();
        let into = PathBuf::from(&placement.dir);
        let from = copy::trimmed(&src);
        if let (Guest::Agent(a), Kind::File, Some(name)) =
            (&guest, st.kind, placement.name.as_deref())
        {
            return agent_get_file(a, from, st, &into.join(name), owners, &src_at).await;
        }
        // What the guest's tar archives, and how its entries are renamed.
        let (tar_dir, member, into, rename) = match (&placement.name, copy::base_name(from)) {
            (Some(name), Some(base)) => (
                copy::parent(from),
                base.to_string(),
                into,
                Some((base.to_string(), name.clone())),
            ),
            (Some(name), None) => {
                let new = into.join(name);
                std::fs::create_dir_all(&new).map_err(|e| host_error(&new, e))?;
                (from.to_string(), ".".to_string(), new, None)
            }
            (None, _) => (from.to_string(), ".".to_string(), into, None),
        };
        let tar = Source {
            dir: tar_dir,
            member,
        };
        match &guest {
            Guest::Agent(a) => {
                agent_get_archive(&guest, a, &tar, &into, rename, owners, &src_at).await
            }
            Guest::Ssh(t) => ssh_get_archive(t, &tar, &into, rename, owners, &src_at).await,
        }
    }

    /// The transport for a copy. With `Auto`, an agent that lacks a command
    /// the copy needs means SSH.
    async fn copy_guest(&self, c: &Container, want: Transport) -> Result<Guest> {
        match self.reach(c, want, DEFAULT_READY_TIMEOUT).await? {
            Reached::Agent(a) => match agent_allows_copy(&a).await {
                Ok(()) => Ok(Guest::Agent(a)),
                Err(e) if want == Transport::Auto && falls_back(&e) => {
                    Ok(Guest::Ssh(self.ssh_ready(c).await?))
                }
                Err(e) => Err(e.into()),
            },
            Reached::Ssh(t) => Ok(Guest::Ssh(t)),
        }
    }

    /// Looks at guest paths; with `Auto`, moves from an agent that stops
    /// answering to SSH (nothing has been written yet).
    async fn stat_with_fallback(
        &self,
        c: &Container,
        want: Transport,
        guest: &mut Guest,
        paths: &[(&str, &str)],
        location: &str,
    ) -> Result<Vec<GuestStat>> {
        match guest.stat(paths, location).await {
            Err(Error::Agent(e)) if want == Transport::Auto && falls_back(&e) => {
                self.remember_agent(c, false);
                *guest = Guest::Ssh(self.ssh_ready(c).await?);
                guest.stat(paths, location).await
            }
            r => r,
        }
    }
}

/// Fails unless the agent allows every command a copy uses.
async fn agent_allows_copy(a: &Agent) -> Result<(), QgaError> {
    let mut s = a.connect(Instant::now() + AGENT_CALL_TIMEOUT).await?;
    let info = s.info(AGENT_CALL_TIMEOUT).await?;
    match AGENT_COMMANDS.iter().find(|c| !info.is_enabled(c)) {
        None => Ok(()),
        Some(missing) => Err(QgaError::Disabled {
            path: s.path().to_path_buf(),
            command: missing.to_string(),
            enabled: info.enabled(),
        }),
    }
}

/// What the guest's `tar -c` archives: `member` inside `dir`.
struct Source {
    dir: String,
    member: String,
}

fn guest_absolute(p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("/{p}")
    }
}

/// `p` as an absolute path string, keeping a trailing `/` or `/.` (they
/// carry meaning in `docker cp`).
fn host_string(p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::invalid("host path", p.to_string_lossy(), "not valid UTF-8"))?;
    if s.starts_with('/') {
        return Ok(s.to_string());
    }
    let cwd = std::env::current_dir().map_err(|e| Error::io("read current directory", ".", e))?;
    let cwd = cwd.to_str().ok_or_else(|| {
        Error::invalid(
            "current directory",
            cwd.to_string_lossy(),
            "not valid UTF-8",
        )
    })?;
    Ok(format!("{}/{s}", cwd.trim_end_matches('/')))
}

fn host_kind(p: &Path, follow: bool) -> Kind {
    let m = if follow {
        std::fs::metadata(p)
    } else {
        std::fs::symlink_metadata(p)
    };
    match m {
        Err(_) => Kind::Missing,
        Ok(m) if m.is_dir() => Kind::Dir,
        Ok(m) if m.is_file() => Kind::File,
        Ok(_) => Kind::Other,
    }
}

fn host_error(path: &Path, source: std::io::Error) -> Error {
    CopyError::Host {
        path: path.to_path_buf(),
        source,
    }
    .into()
}

/// An extraction failure: refused entries are the guest's fault, anything
/// else the host's.
fn extract_error(into: &Path, location: &str, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::InvalidData {
        CopyError::Guest {
            location: location.into(),
            message: e.to_string(),
        }
        .into()
    } else {
        host_error(into, e)
    }
}

fn temp_name() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    format!(
        ".vmcontainer-cp-{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    )
}

fn guest_join(dir: &str, name: &str) -> String {
    format!("{}/{name}", dir.trim_end_matches('/'))
}

/// Reads until `buf` is full or the file ends.
async fn read_full(f: &mut tokio::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Puts the finished temporary file in place with the source's mode (and
/// owner), like tar would: a directory in the way is an error, a symlink
/// is replaced.
const PLACE_FILE: &str = r#"f=$1 t=$2
if [ -d "$t" ] && [ ! -L "$t" ]; then rm -f "$f"; echo "cannot overwrite directory $t with a file" >&2; exit 1; fi
[ -L "$t" ] && rm -f "$t"
if chmod "$3" "$f" && { [ -z "$4" ] || chown "$4" "$f"; } && mv -f "$f" "$t"; then :; else s=$?; rm -f "$f"; exit $s; fi
touch -c -d "@$5" "$t" 2>/dev/null
exit 0"#;

/// One regular file into the guest: written in chunks to a temporary name
/// beside the destination, then moved over it.
async fn agent_put_file(
    guest: &Guest,
    agent: &Agent,
    src: &Path,
    dir: &str,
    name: &str,
    owners: bool,
    at: &str,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = tokio::fs::metadata(src)
        .await
        .map_err(|e| host_error(src, e))?;
    let tmp = guest_join(dir, &temp_name());
    let sent: Result<()> = async {
        let mut f = tokio::fs::File::open(src)
            .await
            .map_err(|e| host_error(src, e))?;
        if through_data_port(agent, &mut f, meta.len(), src, &tmp, at).await? {
            return Ok(());
        }
        let mut conn = AgentConn::new(agent);
        let h = conn
            .get()
            .await?
            .file_open(&tmp, "w", FILE_CALL_TIMEOUT)
            .await?;
        let mut buf = vec![0u8; CHUNK];
        let written: Result<()> = async {
            loop {
                let n = read_full(&mut f, &mut buf)
                    .await
                    .map_err(|e| host_error(src, e))?;
                if n > 0 {
                    conn.get()
                        .await?
                        .file_write(h, &buf[..n], FILE_CALL_TIMEOUT)
                        .await?;
                }
                if n < CHUNK {
                    return Ok(());
                }
                conn.relax();
            }
        }
        .await;
        let closed = conn.get().await?.file_close(h, FILE_CALL_TIMEOUT).await;
        written?;
        closed?;
        Ok(())
    }
    .await;
    if let Err(e) = sent {
        guest.remove(&tmp).await;
        return Err(e);
    }
    let owner = if owners {
        format!("{}:{}", meta.uid(), meta.gid())
    } else {
        String::new()
    };
    let mode = format!("{:o}", meta.mode() & 0o7777);
    let mtime = meta.mtime().to_string();
    let target = guest_join(dir, name);
    guest
        .sh(PLACE_FILE, &[&tmp, &target, &mode, &owner, &mtime], at)
        .await
        .map(drop)
}

/// Sends `len` bytes of `f` to the guest file `tmp` through the data port
/// ([`crate::qga::data_port`]); `false` when the VM or guest has none and
/// nothing was written.
async fn through_data_port(
    agent: &Agent,
    f: &mut tokio::fs::File,
    len: u64,
    src: &Path,
    tmp: &str,
    at: &str,
) -> Result<bool> {
    match agent.put_file(f, len, tmp, FILE_CALL_TIMEOUT).await {
        Ok(Put::Done) => Ok(true),
        Ok(Put::Unavailable) => Ok(false),
        Ok(Put::Failed { exit_code, stderr }) => Err(CopyError::Guest {
            location: at.into(),
            message: format!("{stderr} (exit code {exit_code})"),
        }
        .into()),
        Err(PutError::Source(e)) => Err(host_error(src, e)),
        Err(PutError::Agent(e)) => Err(e.into()),
    }
}

/// The archive of `src` in an unnamed host temporary file, and its length.
async fn spool_archive(
    src: &Path,
    name: Option<String>,
    owners: bool,
) -> Result<(tokio::fs::File, u64)> {
    let from = src.to_path_buf();
    let spooled = tokio::task::spawn_blocking(move || -> std::io::Result<(std::fs::File, u64)> {
        use std::io::{Seek, Write};
        let mut f = tempfile::tempfile()?;
        let mut w = std::io::BufWriter::with_capacity(CHUNK, &mut f);
        build_archive(&from, name.as_deref(), owners, &mut w)?;
        w.flush()?;
        drop(w);
        let len = f.stream_position()?;
        f.rewind()?;
        Ok((f, len))
    })
    .await
    .map_err(|e| host_error(src, std::io::Error::other(e.to_string())))?
    .map_err(|e| host_error(src, e))?;
    Ok((tokio::fs::File::from_std(spooled.0), spooled.1))
}

/// Anything else into the guest: a tar archive written to a temporary
/// guest file, then unpacked there by the guest's `tar`. Through the data
/// port the archive is built on the host first (in an unnamed temporary
/// file: the receiver takes an exact length); through agent calls it
/// streams.
async fn agent_put_archive(
    guest: &Guest,
    agent: &Agent,
    src: &Path,
    placement: &Placement,
    owners: bool,
    at: &str,
) -> Result<()> {
    let tmp = guest_join(&placement.dir, &format!("{}.tar", temp_name()));
    let unpack = || async {
        guest
            .sh(
                r#"tar -x -f "$1" -C "$2"; s=$?; rm -f "$1"; exit $s"#,
                &[&tmp, &placement.dir],
                at,
            )
            .await
    };
    let (mut spooled, len) = spool_archive(src, placement.name.clone(), owners).await?;
    match through_data_port(agent, &mut spooled, len, src, &tmp, at).await {
        Ok(true) => return unpack().await.map(drop),
        Ok(false) => {}
        Err(e) => {
            guest.remove(&tmp).await;
            return Err(e);
        }
    }
    drop(spooled);
    let (mut w, mut rx) = chunk_writer(CHUNK);
    let (from, name) = (src.to_path_buf(), placement.name.clone());
    let builder = tokio::task::spawn_blocking(move || {
        use std::io::Write;
        build_archive(&from, name.as_deref(), owners, &mut w)?;
        w.flush()
    });
    let sent: Result<()> = async {
        let mut conn = AgentConn::new(agent);
        let h = conn
            .get()
            .await?
            .file_open(&tmp, "w", FILE_CALL_TIMEOUT)
            .await?;
        let written: Result<()> = async {
            while let Some(chunk) = rx.recv().await {
                conn.get()
                    .await?
                    .file_write(h, &chunk, FILE_CALL_TIMEOUT)
                    .await?;
                conn.relax();
            }
            Ok(())
        }
        .await;
        let closed = conn.get().await?.file_close(h, FILE_CALL_TIMEOUT).await;
        written?;
        closed?;
        Ok(())
    }
    .await;
    drop(rx);
    let built = builder
        .await
        .map_err(|e| host_error(src, std::io::Error::other(e.to_string())))?;
    if let Err(e) = sent.and(built.map_err(|e| host_error(src, e))) {
        guest.remove(&tmp).await;
        return Err(e);
    }
    unpack().await.map(drop)
}

/// One regular file from the guest: read in chunks into a temporary file
/// beside the destination, then renamed over it.
async fn agent_get_file(
    agent: &Agent,
    src: &str,
    st: GuestStat,
    target: &Path,
    owners: bool,
    at: &str,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
        return Err(host_error(
            target,
            std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "cannot overwrite a directory with a file",
            ),
        ));
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    let tmp = tempfile::Builder::new()
        .prefix(".vmcontainer-cp-")
        .tempfile_in(dir)
        .map_err(|e| host_error(dir, e))?;
    let mut out = tokio::fs::File::from_std(
        tmp.as_file()
            .try_clone()
            .map_err(|e| host_error(tmp.path(), e))?,
    );
    let mut conn = AgentConn::new(agent);
    let h = conn
        .get()
        .await?
        .file_open(src, "r", FILE_CALL_TIMEOUT)
        .await?;
    let copied: Result<()> = async {
        loop {
            let (data, eof) = conn
                .get()
                .await?
                .file_read(h, CHUNK, FILE_CALL_TIMEOUT)
                .await?;
            out.write_all(&data)
                .await
                .map_err(|e| host_error(tmp.path(), e))?;
            if eof || data.is_empty() {
                return Ok(());
            }
            conn.relax();
        }
    }
    .await;
    if let Ok(s) = conn.get().await {
        let _ = s.file_close(h, FILE_CALL_TIMEOUT).await;
    }
    copied.map_err(|e| match e {
        Error::Agent(q) => CopyError::Guest {
            location: at.into(),
            message: q.to_string(),
        }
        .into(),
        other => other,
    })?;
    out.flush().await.map_err(|e| host_error(tmp.path(), e))?;
    drop(out);
    let f = tmp.as_file();
    f.set_permissions(std::fs::Permissions::from_mode(st.mode))
        .map_err(|e| host_error(tmp.path(), e))?;
    if st.mtime > 0 {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(st.mtime as u64);
        f.set_modified(t).map_err(|e| host_error(tmp.path(), e))?;
    }
    if owners {
        std::os::unix::fs::fchown(f, Some(st.uid), Some(st.gid))
            .map_err(|e| host_error(tmp.path(), e))?;
    }
    tmp.persist(target)
        .map_err(|e| host_error(target, e.error))?;
    Ok(())
}

/// Anything else from the guest: its `tar` writes an archive to a
/// temporary guest file, which is read in chunks and unpacked on the host
/// as it arrives.
async fn agent_get_archive(
    guest: &Guest,
    agent: &Agent,
    tar: &Source,
    into: &Path,
    rename: Option<(String, String)>,
    owners: bool,
    at: &str,
) -> Result<()> {
    let tmp = guest
        .sh(
            r#"t=$(mktemp) || exit 1
if tar -c -f "$t" -C "$1" "$2"; then echo "$t"; else s=$?; rm -f "$t"; exit $s; fi"#,
            &[&tar.dir, &tar.member],
            at,
        )
        .await?
        .trim()
        .to_string();
    let (tx, reader) = chunk_reader();
    let dest = into.to_path_buf();
    let extract = tokio::task::spawn_blocking(move || {
        let rename = rename.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        extract_archive(reader, &dest, rename, owners)
    });
    let read: Result<()> = async {
        let mut conn = AgentConn::new(agent);
        let h = conn
            .get()
            .await?
            .file_open(&tmp, "r", FILE_CALL_TIMEOUT)
            .await?;
        let copied: Result<()> = async {
            loop {
                let (data, eof) = conn
                    .get()
                    .await?
                    .file_read(h, CHUNK, FILE_CALL_TIMEOUT)
                    .await?;
                let end = eof || data.is_empty();
                if !data.is_empty() && tx.send(data).await.is_err() {
                    return Ok(()); // the extraction stopped; its error says why
                }
                if end {
                    return Ok(());
                }
                conn.relax();
            }
        }
        .await;
        if let Ok(s) = conn.get().await {
            let _ = s.file_close(h, FILE_CALL_TIMEOUT).await;
        }
        copied
    }
    .await;
    drop(tx);
    let extracted = extract
        .await
        .map_err(|e| host_error(into, std::io::Error::other(e.to_string())))?;
    guest.remove(&tmp).await;
    read?;
    extracted.map(drop).map_err(|e| extract_error(into, at, e))
}

/// Drains a child's stderr on a thread, so a chatty child never blocks on
/// a full pipe while we feed or read it.
fn collect_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let mut err = child.stderr.take();
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            use std::io::Read;
            let _ = e.read_to_string(&mut s);
        }
        s
    })
}

/// Into the guest over SSH: the archive streams through ssh's stdin into
/// the guest's `tar -x`.
async fn ssh_put_archive(
    t: &SshTarget,
    src: &Path,
    placement: &Placement,
    owners: bool,
    at: &str,
) -> Result<()> {
    let argv: Vec<String> = ["tar", "-x", "-f", "-", "-C", &placement.dir]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cmd = t.streaming_command(&argv)?;
    let (from, name, at) = (src.to_path_buf(), placement.name.clone(), at.to_string());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| host_error(Path::new("ssh"), e))?;
        let stderr = collect_stderr(&mut child);
        let stdin = child.stdin.take().expect("stdin is piped");
        let built = build_archive(&from, name.as_deref(), owners, stdin);
        let status = child.wait().map_err(|e| host_error(Path::new("ssh"), e))?;
        let err = stderr.join().unwrap_or_default();
        if !status.success() {
            return Err(CopyError::Guest {
                location: at,
                message: format!("{} ({status})", err.trim()),
            }
            .into());
        }
        built.map_err(|e| host_error(&from, e))
    })
    .await
    .map_err(|e| host_error(src, std::io::Error::other(e.to_string())))?
}

/// From the guest over SSH: the guest's `tar -c` streams through ssh's
/// stdout and is unpacked as it arrives.
async fn ssh_get_archive(
    t: &SshTarget,
    tar: &Source,
    into: &Path,
    rename: Option<(String, String)>,
    owners: bool,
    at: &str,
) -> Result<()> {
    let argv: Vec<String> = ["tar", "-c", "-f", "-", "-C", &tar.dir, &tar.member]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut cmd = t.streaming_command(&argv)?;
    let (dest, at) = (into.to_path_buf(), at.to_string());
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| host_error(Path::new("ssh"), e))?;
        let stderr = collect_stderr(&mut child);
        let stdout = child.stdout.take().expect("stdout is piped");
        let rename = rename.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
        let extracted = extract_archive(stdout, &dest, rename, owners);
        if extracted.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| host_error(Path::new("ssh"), e))?;
        let err = stderr.join().unwrap_or_default();
        match extracted {
            // The guest sent something unsafe: that is the story.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(extract_error(&dest, &at, e))
            }
            // The guest's tar failed: its message says why (the stream
            // then ends early, which is only a consequence).
            _ if !status.success() => Err(CopyError::Guest {
                location: at,
                message: format!("{} ({status})", err.trim()),
            }
            .into()),
            r => r.map(drop).map_err(|e| extract_error(&dest, &at, e)),
        }
    })
    .await
    .map_err(|e| host_error(into, std::io::Error::other(e.to_string())))?
}
