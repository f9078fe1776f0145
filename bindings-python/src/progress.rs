//! Transfer progress (the dev image's install and update, registry push
//! and pull) handed to a Python callback.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;

/// A Python progress callback as the core's `Progress`: called on the
/// calling thread with `(done, total or None)`; the first exception it
/// raises stops the transfer and is re-raised.
pub(crate) struct Progress {
    callback: Option<Py<PyAny>>,
    failed: AtomicBool,
    error: Mutex<Option<PyErr>>,
}

impl Progress {
    pub(crate) fn new(callback: Option<Py<PyAny>>) -> Self {
        Progress {
            callback,
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
        }
    }

    pub(crate) fn report(&self, done: u64, total: Option<u64>) {
        let Some(cb) = &self.callback else { return };
        if self.failed() {
            return;
        }
        if let Some(e) = Python::attach(|py| cb.call1(py, (done, total)).err()) {
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            self.failed.store(true, Ordering::SeqCst);
        }
    }

    pub(crate) fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub(crate) fn take_error(&self) -> Option<PyErr> {
        self.error.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}
