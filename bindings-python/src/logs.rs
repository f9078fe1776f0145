//! `LogStream`: a followed serial log as a Python iterator of lines.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use vmcontainer::LogFollower;

use crate::blocking::slice;
use crate::errors::to_py;
use crate::repr;

/// Lines of a container's serial log: what is there, then new lines as the
/// guest writes them, ending when the container stops. Iterate it, or use
/// it as a context manager so `close()` runs when you are done. Ctrl-C
/// interrupts a wait for the next line.
#[pyclass(module = "vmcontainer", frozen)]
pub struct LogStream {
    id: String,
    follower: Mutex<Option<LogFollower>>,
    closed: AtomicBool,
}

impl LogStream {
    pub(crate) fn new(id: String, follower: LogFollower) -> Self {
        LogStream {
            id,
            follower: Mutex::new(Some(follower)),
            closed: AtomicBool::new(false),
        }
    }
}

#[pymethods]
impl LogStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<String> {
        // Never wait for the lock while attached: the holder needs to
        // attach between slices.
        let mut guard = self.follower.try_lock().map_err(|_| {
            PyRuntimeError::new_err("this LogStream is being read by another thread")
        })?;
        let Some(follower) = guard.as_mut() else {
            return Err(PyStopIteration::new_err(()));
        };
        let line = {
            let mut next = std::pin::pin!(follower.next_line());
            loop {
                if self.closed.load(Ordering::SeqCst) {
                    break None;
                }
                match slice(py, next.as_mut()) {
                    Some(line) => break line,
                    None => py.check_signals()?,
                }
            }
        };
        match line {
            Some(Ok(line)) => Ok(line),
            Some(Err(e)) => Err(to_py(e)),
            None => {
                *guard = None;
                Err(PyStopIteration::new_err(()))
            }
        }
    }

    /// Stops following; a read waiting in another thread ends too.
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut g) = self.follower.try_lock() {
            *g = None;
        }
    }

    /// Whether `close()` was called or the log has ended.
    #[getter]
    fn closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
            || self
                .follower
                .try_lock()
                .map(|g| g.is_none())
                .unwrap_or(false)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("<LogStream of container {}>", repr(py, &self.id))
    }
}
