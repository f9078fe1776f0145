//! `Process`: a command started by `Manager.spawn`. The native class
//! offers promise-returning reads, writes and waits; `index.js` wraps them
//! in real `stream.Readable`/`Writable` objects (`stdout`, `stderr`,
//! `stdin`), which read only when the consumer asks (backpressure: nothing
//! is buffered beyond the stream's high-water mark) and write one chunk at
//! a time.

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, PromiseRaw};
use napi::Env;
use napi_derive::napi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use vmcontainer::spawn::{InputStream, OutputStream, ProcessControl};

use crate::promise::spawn;

/// Largest chunk one read returns.
const MAX_CHUNK: u32 = 1 << 20;

/// Options of `Manager.spawn`.
#[napi(object, object_to_js = false)]
pub struct SpawnOptions {
    /// Variables added to its environment.
    pub env: Option<std::collections::HashMap<String, String>>,
    /// Its working directory.
    pub cwd: Option<String>,
    /// The user it runs as (through the guest's `su`).
    pub user: Option<String>,
    /// Give it a terminal (all output then comes on `stdout`).
    pub tty: Option<bool>,
    /// Kill it after this many milliseconds; `wait()` then rejects with
    /// code `ERR_VMC_TIMEOUT`.
    pub timeout: Option<u32>,
}

/// The core's options for what JS passed.
pub fn spawn_options(o: Option<SpawnOptions>) -> vmcontainer::SpawnOptions {
    let Some(o) = o else {
        return Default::default();
    };
    let mut env: Vec<(String, String)> = o.env.unwrap_or_default().into_iter().collect();
    env.sort();
    vmcontainer::SpawnOptions {
        env,
        cwd: o.cwd,
        user: o.user,
        tty: o.tty.unwrap_or(false),
        timeout: o
            .timeout
            .map(|ms| std::time::Duration::from_millis(u64::from(ms))),
        ..Default::default()
    }
}

/// A command running in a container. `stdin` (Writable), `stdout` and
/// `stderr` (Readable) are added by the module's JavaScript; the methods
/// here are what they use.
#[napi]
pub struct Process {
    inner: Arc<Mutex<vmcontainer::Process>>,
    control: ProcessControl,
    stdin: Arc<Mutex<Option<InputStream>>>,
    stdout: Arc<Mutex<Option<OutputStream>>>,
    stderr: Arc<Mutex<Option<OutputStream>>>,
}

impl Process {
    pub(crate) fn new(mut p: vmcontainer::Process) -> Self {
        Process {
            control: p.control(),
            stdin: Arc::new(Mutex::new(p.take_stdin())),
            stdout: Arc::new(Mutex::new(p.take_stdout())),
            stderr: Arc::new(Mutex::new(p.take_stderr())),
            inner: Arc::new(Mutex::new(p)),
        }
    }
}

fn io_error(e: std::io::Error) -> vmcontainer::Error {
    vmcontainer::Error::Io {
        op: "talking to the process",
        path: "".into(),
        error: e,
    }
}

async fn read_chunk(
    s: Arc<Mutex<Option<OutputStream>>>,
    size: u32,
) -> vmcontainer::Result<Option<Vec<u8>>> {
    let mut g = s.lock().await;
    let Some(r) = g.as_mut() else {
        return Ok(None);
    };
    let mut buf = vec![0u8; size.clamp(1, MAX_CHUNK) as usize];
    let n = r.read(&mut buf).await.map_err(io_error)?;
    if n == 0 {
        return Ok(None);
    }
    buf.truncate(n);
    Ok(Some(buf))
}

fn to_buffer(b: Option<Vec<u8>>) -> Option<Buffer> {
    b.map(Buffer::from)
}

#[napi]
impl Process {
    /// Its PID in the guest.
    #[napi(getter)]
    pub fn pid(&self) -> u32 {
        self.control.pid()
    }

    /// Reads the next chunk of stdout (at most `size` bytes) as it
    /// arrives; `null` at its end.
    #[napi]
    pub fn read_stdout<'env>(
        &self,
        env: &'env Env,
        size: u32,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        spawn(env, read_chunk(self.stdout.clone(), size), to_buffer)
    }

    /// Reads the next chunk of stderr; `null` at its end.
    #[napi]
    pub fn read_stderr<'env>(
        &self,
        env: &'env Env,
        size: u32,
    ) -> napi::Result<PromiseRaw<'env, Option<Buffer>>> {
        spawn(env, read_chunk(self.stderr.clone(), size), to_buffer)
    }

    /// Writes `data` to stdin; resolves once the guest took it all.
    #[napi]
    pub fn write_stdin<'env>(
        &self,
        env: &'env Env,
        data: Buffer,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let data = data.to_vec();
        let s = self.stdin.clone();
        spawn(
            env,
            async move {
                let mut g = s.lock().await;
                let w = g.as_mut().ok_or_else(|| {
                    vmcontainer::Error::invalid("stdin", "closed", "it was closed")
                })?;
                w.write_all(&data).await.map_err(io_error)
            },
            |()| (),
        )
    }

    /// Closes stdin (the process reads end of file).
    #[napi]
    pub fn close_stdin<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        let s = self.stdin.clone();
        spawn(
            env,
            async move {
                if let Some(mut w) = s.lock().await.take() {
                    w.shutdown().await.map_err(io_error)?;
                }
                Ok(())
            },
            |()| (),
        )
    }

    /// Waits for it to end: its exit code, or 128 + the signal that ended
    /// it (as a shell reports it). Consume `stdout` and `stderr` (as with
    /// `child_process`): output nobody reads stalls the process. Rejects
    /// with `ERR_VMC_TIMEOUT` when the spawn's timeout killed it.
    #[napi]
    pub fn wait<'env>(&self, env: &'env Env) -> napi::Result<PromiseRaw<'env, i32>> {
        let p = self.inner.clone();
        let stdin = self.stdin.clone();
        spawn(
            env,
            async move {
                stdin.lock().await.take();
                p.lock().await.wait().await.map(|s| s.shell_code())
            },
            |c| c,
        )
    }

    /// Sends `signal` (default `SIGTERM`; a number or a name like `"KILL"`
    /// or `"SIGINT"`) to it and everything it started in the guest.
    #[napi]
    pub fn kill<'env>(
        &self,
        env: &'env Env,
        signal: Option<Either<String, i32>>,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.control.clone();
        spawn(
            env,
            async move {
                let n = match signal {
                    None => 15,
                    Some(Either::A(name)) => vmcontainer::spawn::parse_signal(&name)?,
                    Some(Either::B(n)) => n,
                };
                c.kill(n).await
            },
            |()| (),
        )
    }

    /// Sets its terminal's size (a process spawned with `tty`).
    #[napi]
    pub fn resize<'env>(
        &self,
        env: &'env Env,
        cols: u16,
        rows: u16,
    ) -> napi::Result<PromiseRaw<'env, ()>> {
        let c = self.control.clone();
        spawn(env, async move { c.resize(cols, rows).await }, |()| ())
    }
}
