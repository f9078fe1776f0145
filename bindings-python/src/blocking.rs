//! Running the core's async operations from Python threads.
//!
//! The GIL is released while Rust works. Long waits run on the core's shared
//! runtime in short slices; between slices the GIL is taken back briefly to
//! run Python's signal handlers, so Ctrl-C raises `KeyboardInterrupt` within
//! a slice and the dropped future cancels the operation.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::errors::to_py;

/// How long Rust runs between two checks for pending signals.
const SLICE: Duration = Duration::from_millis(50);

/// Runs `fut` to completion without the GIL, interruptible by signals.
pub(crate) fn interruptible<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = vmcontainer::Result<T>> + Send,
    T: Send,
{
    let mut fut = std::pin::pin!(fut);
    loop {
        match slice(py, fut.as_mut()) {
            Some(done) => return done.map_err(to_py),
            // Raises KeyboardInterrupt (or whatever a handler raised);
            // returning drops `fut`, which cancels the operation.
            None => py.check_signals()?,
        }
    }
}

/// [`interruptible`] that also stops as soon as `stop` returns true (it is
/// checked before every poll of `fut`, so it takes effect at the next await
/// point, even within a slice), then raises what `error` returns.
#[cfg_attr(not(any(feature = "devenv", feature = "registry")), allow(dead_code))] // only transfers use it
pub(crate) fn interruptible_unless<F, T>(
    py: Python<'_>,
    fut: F,
    stop: &(dyn Fn() -> bool + Sync),
    error: impl Fn() -> Option<PyErr>,
) -> PyResult<T>
where
    F: Future<Output = vmcontainer::Result<T>> + Send,
    T: Send,
{
    let mut fut = std::pin::pin!(fut);
    let guarded = std::future::poll_fn(move |cx| {
        if stop() {
            Poll::Ready(None)
        } else {
            fut.as_mut().poll(cx).map(Some)
        }
    });
    let stopped =
        || error().unwrap_or_else(|| PyRuntimeError::new_err("the operation was stopped"));
    match interruptible(py, async { Ok(guarded.await) })? {
        Some(_) if stop() => Err(stopped()),
        Some(done) => done.map_err(to_py),
        None => Err(stopped()),
    }
}

/// Runs a foreground run that stops its VM when `token` is cancelled: a
/// Ctrl-C cancels the token, the run is polled on until the VM is down and
/// its record final, and then the `KeyboardInterrupt` is raised. No VM is
/// left behind by an interrupted foreground run.
pub(crate) fn until_interrupted<F, T>(
    py: Python<'_>,
    token: &vmcontainer::CancelToken,
    fut: F,
) -> PyResult<T>
where
    F: Future<Output = vmcontainer::Result<T>> + Send,
    T: Send,
{
    let mut fut = std::pin::pin!(fut);
    let mut interrupt: Option<PyErr> = None;
    loop {
        match slice(py, fut.as_mut()) {
            Some(done) => {
                return match interrupt {
                    Some(e) => Err(e),
                    None => done.map_err(to_py),
                }
            }
            None if interrupt.is_none() => {
                if let Err(e) = py.check_signals() {
                    token.cancel();
                    interrupt = Some(e);
                }
            }
            None => {}
        }
    }
}

/// Polls `fut` without the GIL for at most one slice; `None` if it is not
/// done yet. The caller checks signals between slices.
pub(crate) fn slice<F>(py: Python<'_>, fut: Pin<&mut F>) -> Option<F::Output>
where
    F: Future + Send,
    F::Output: Send,
{
    py.detach(|| {
        // Looked up each slice: after fork() the child gets its own.
        let rt = vmcontainer::blocking::runtime();
        // The timer must be made inside the runtime, hence the async block.
        rt.block_on(async { tokio::time::timeout(SLICE, fut).await })
            .ok()
    })
}

/// Runs `fut` to completion without the GIL and without interruption, for
/// short operations that must not be left half done (starting a VM: a
/// cancelled start could leave a hypervisor running that no record names).
/// A Ctrl-C meanwhile is raised as soon as the call returns.
pub(crate) fn uninterruptible<F, T>(py: Python<'_>, fut: F) -> PyResult<T>
where
    F: Future<Output = vmcontainer::Result<T>> + Send,
    T: Send,
{
    py.detach(|| vmcontainer::blocking::runtime().block_on(fut))
        .map_err(to_py)
}

/// Runs a synchronous core call (file locks, reads) without the GIL.
pub(crate) fn detached<F, T>(py: Python<'_>, f: F) -> PyResult<T>
where
    F: FnOnce() -> vmcontainer::Result<T> + Send,
    T: Send,
{
    py.detach(f).map_err(to_py)
}
