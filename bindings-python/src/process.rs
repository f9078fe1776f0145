//! `Process`: a command started by `Manager.spawn`, with `.stdin` to
//! write, `.stdout`/`.stderr` to iterate as bytes chunks arrive,
//! `.wait()` and `.kill()`. Every wait releases the GIL and is
//! interruptible by Ctrl-C (the process keeps running; the context
//! manager, or dropping the object, kills it).

use std::sync::Arc;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use vmcontainer::spawn::{OutputStream, ProcessControl};
use vmcontainer::ExitStatus;

use crate::blocking::interruptible;
use crate::errors::to_py;

/// Largest chunk one iteration step returns.
const CHUNK: usize = 64 << 10;

/// Runs an I/O future without the GIL, interruptible; I/O errors become
/// Python's `OSError` subclasses (`BrokenPipeError` for a closed stdin).
fn io_call<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: std::future::Future<Output = std::io::Result<T>> + Send,
    T: Send,
{
    interruptible(py, async { Ok(fut.await) })?.map_err(PyErr::from)
}

/// A process's standard input: `write(bytes)`, `flush()`, `close()`.
#[pyclass(module = "vmcontainer._native")]
pub struct ProcessInput {
    inner: Arc<Mutex<Option<vmcontainer::spawn::InputStream>>>,
}

#[pymethods]
impl ProcessInput {
    /// Writes all of `data` (waiting while the guest catches up) and
    /// returns its length. Raises `BrokenPipeError` once the process no
    /// longer reads, `ValueError` after `close()`.
    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<usize> {
        let data = data.to_vec();
        let len = data.len();
        let inner = self.inner.clone();
        let closed = io_call(py, async move {
            let mut g = inner.lock().await;
            match g.as_mut() {
                Some(w) => w.write_all(&data).await.map(|_| false),
                None => Ok(true),
            }
        })?;
        if closed {
            return Err(PyValueError::new_err("write to a closed stdin"));
        }
        Ok(len)
    }

    /// Nothing is buffered here; for file-like compatibility.
    fn flush(&self) {}

    /// Closes it: the process reads end of file. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let inner = self.inner.clone();
        io_call(py, async move {
            if let Some(mut w) = inner.lock().await.take() {
                w.shutdown().await?;
            }
            Ok(())
        })
    }

    /// Whether `close()` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.try_lock().map(|g| g.is_none()).unwrap_or(false)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Py<PyAny>>,
        _v: Option<Py<PyAny>>,
        _tb: Option<Py<PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

/// A process's standard output or error: iterating yields `bytes` chunks
/// as the guest produces them, ending at end of stream; `read()` reads
/// all.
#[pyclass(module = "vmcontainer._native")]
pub struct ProcessOutput {
    inner: Arc<Mutex<Option<OutputStream>>>,
}

impl ProcessOutput {
    fn read_some(&self, py: Python<'_>, max: usize) -> PyResult<Vec<u8>> {
        let inner = self.inner.clone();
        io_call(py, async move {
            let mut g = inner.lock().await;
            let Some(r) = g.as_mut() else {
                return Ok(Vec::new());
            };
            let mut buf = vec![0u8; max];
            let n = r.read(&mut buf).await?;
            buf.truncate(n);
            Ok(buf)
        })
    }
}

#[pymethods]
impl ProcessOutput {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let b = self.read_some(py, CHUNK)?;
        Ok((!b.is_empty()).then(|| PyBytes::new(py, &b)))
    }

    /// Reads up to `n` bytes (at least one unless at the end), or with
    /// `n < 0` everything to the end.
    #[pyo3(signature = (n = -1))]
    fn read<'py>(&self, py: Python<'py>, n: isize) -> PyResult<Bound<'py, PyBytes>> {
        if n >= 0 {
            let b = self.read_some(py, n as usize)?;
            return Ok(PyBytes::new(py, &b));
        }
        let inner = self.inner.clone();
        let all = io_call(py, async move {
            let mut g = inner.lock().await;
            let mut all = Vec::new();
            if let Some(r) = g.as_mut() {
                r.read_to_end(&mut all).await?;
            }
            Ok(all)
        })?;
        Ok(PyBytes::new(py, &all))
    }
}

/// A command running in a container (`Manager.spawn`).
#[pyclass(module = "vmcontainer._native")]
pub struct Process {
    inner: Arc<Mutex<vmcontainer::Process>>,
    control: ProcessControl,
    stdin: Py<ProcessInput>,
    stdout: Py<ProcessOutput>,
    stderr: Py<ProcessOutput>,
    returncode: std::sync::Mutex<Option<i32>>,
}

impl Process {
    pub(crate) fn new(py: Python<'_>, mut p: vmcontainer::Process) -> PyResult<Self> {
        let stdin = Py::new(
            py,
            ProcessInput {
                inner: Arc::new(Mutex::new(p.take_stdin())),
            },
        )?;
        let out = |s: Option<OutputStream>| {
            Py::new(
                py,
                ProcessOutput {
                    inner: Arc::new(Mutex::new(s)),
                },
            )
        };
        let stdout = out(p.take_stdout())?;
        let stderr = out(p.take_stderr())?;
        Ok(Process {
            control: p.control(),
            inner: Arc::new(Mutex::new(p)),
            stdin,
            stdout,
            stderr,
            returncode: std::sync::Mutex::new(None),
        })
    }
}

/// Like `subprocess.Popen.returncode`: the code, or minus the signal.
fn returncode(s: ExitStatus) -> i32 {
    match s {
        ExitStatus::Code(c) => c,
        ExitStatus::Signal(n) => -n,
    }
}

/// A signal given as a number, a name (`"TERM"`, `"SIGKILL"`) or a
/// `signal.Signals` member.
fn signal_number(sig: &Bound<'_, PyAny>) -> PyResult<i32> {
    if let Ok(n) = sig.extract::<i32>() {
        return Ok(n);
    }
    if let Ok(s) = sig.extract::<String>() {
        return vmcontainer::spawn::parse_signal(&s).map_err(to_py);
    }
    Err(PyTypeError::new_err(
        "a signal is an int, a name like 'TERM', or a signal.Signals member",
    ))
}

#[pymethods]
impl Process {
    /// The standard input (`write`, `close`).
    #[getter]
    fn stdin(&self, py: Python<'_>) -> Py<ProcessInput> {
        self.stdin.clone_ref(py)
    }

    /// The standard output: iterate for `bytes` chunks as they arrive.
    #[getter]
    fn stdout(&self, py: Python<'_>) -> Py<ProcessOutput> {
        self.stdout.clone_ref(py)
    }

    /// The standard error (empty with `tty=True`: all output is on the
    /// terminal, i.e. `stdout`).
    #[getter]
    fn stderr(&self, py: Python<'_>) -> Py<ProcessOutput> {
        self.stderr.clone_ref(py)
    }

    /// Its PID in the guest.
    #[getter]
    fn pid(&self) -> u32 {
        self.control.pid()
    }

    /// The exit code once `wait()` returned (minus the signal if one
    /// ended it), else `None`.
    #[getter]
    fn returncode(&self) -> Option<i32> {
        *self.returncode.lock().unwrap()
    }

    /// Waits for it to end and returns its exit code, or minus the signal
    /// that ended it (as `subprocess` does). Closes stdin first. Read
    /// `stdout` and `stderr` (or have a thread do it): as with
    /// `subprocess.PIPE`, output nobody reads fills its pipe and stalls the
    /// process. Raises `WaitTimeoutError` when the spawn's
    /// `timeout` killed it, `CommunicationError` when the connection broke.
    /// Ctrl-C interrupts the wait (the process keeps running).
    fn wait(&self, py: Python<'_>) -> PyResult<i32> {
        let inner = self.inner.clone();
        let st = interruptible(py, async move { inner.lock().await.wait().await })?;
        let code = returncode(st);
        *self.returncode.lock().unwrap() = Some(code);
        Ok(code)
    }

    /// Sends `sig` (default SIGTERM; an int, a name like `"KILL"`, or a
    /// `signal.Signals`) to it and everything it started in the guest.
    #[pyo3(signature = (sig = None))]
    fn kill(&self, py: Python<'_>, sig: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let n = match sig {
            Some(s) => signal_number(s)?,
            None => 15,
        };
        let c = self.control.clone();
        interruptible(py, async move { c.kill(n).await })
    }

    /// Sets its terminal's size (a process spawned with `tty=True`).
    fn resize(&self, py: Python<'_>, cols: u16, rows: u16) -> PyResult<()> {
        let c = self.control.clone();
        interruptible(py, async move { c.resize(cols, rows).await })
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Leaving the block kills a process still running (SIGKILL) and
    /// waits for it.
    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Py<PyAny>>,
        _v: Option<Py<PyAny>>,
        _tb: Option<Py<PyAny>>,
    ) -> PyResult<bool> {
        if self.returncode().is_none() {
            let inner = self.inner.clone();
            let c = self.control.clone();
            let _ = interruptible(py, async move {
                let _ = c.kill(9).await;
                inner.lock().await.wait().await
            });
        }
        Ok(false)
    }

    fn __repr__(&self) -> String {
        match self.returncode() {
            Some(c) => format!("<Process pid={} returncode={c}>", self.control.pid()),
            None => format!("<Process pid={} running>", self.control.pid()),
        }
    }
}
