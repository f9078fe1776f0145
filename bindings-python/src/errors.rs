//! Core errors as Python exceptions. The classes are defined in
//! `vmcontainer/_errors.py` (so they can also derive from the matching
//! built-in, e.g. `InvalidInputError` from `ValueError`); this maps each
//! [`ErrorKind`] to one of them, one to one.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;
use vmcontainer::templates::TemplateError;
use vmcontainer::{Error, ErrorKind};

/// The Python class name for `kind`. Exhaustive on purpose: a new kind in
/// the core fails this build until it has a class.
fn class_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "NotFoundError",
        ErrorKind::Ambiguous => "AmbiguousError",
        ErrorKind::NotRunning => "NotRunningError",
        ErrorKind::Running => "ContainerRunningError",
        ErrorKind::InvalidInput => "InvalidInputError",
        ErrorKind::HypervisorUnavailable => "HypervisorUnavailableError",
        ErrorKind::StartFailed => "StartFailedError",
        ErrorKind::Timeout => "WaitTimeoutError",
        ErrorKind::TemplateVariables => "TemplateVariablesError",
        ErrorKind::Template => "TemplateError",
        ErrorKind::LinuxKit => "LinuxKitError",
        ErrorKind::StateCorrupt => "StateCorruptError",
        ErrorKind::Communication => "CommunicationError",
        ErrorKind::Io => "HostOSError",
        ErrorKind::Download => "DownloadError",
        ErrorKind::Checksum => "ChecksumError",
        ErrorKind::Cancelled => "OperationCancelledError",
    }
}

/// `[(kind, class name)]` for every kind of the core (`ErrorKind::ALL`):
/// the package's tests check each class exists with that `kind`.
#[pyfunction]
pub fn error_kinds() -> Vec<(&'static str, &'static str)> {
    ErrorKind::ALL
        .iter()
        .map(|k| (k.as_str(), class_name(*k)))
        .collect()
}

/// Converts a core error into the matching `vmcontainer` exception, with
/// the core's message.
pub(crate) fn to_py(err: Error) -> PyErr {
    Python::attach(|py| match build(py, &err) {
        Ok(e) => e,
        // Only if the pure-Python half is missing (e.g. `_native` imported
        // on its own): still raise, with the kind in the message.
        Err(_) => PyRuntimeError::new_err(format!("{} ({})", err, err.kind().as_str())),
    })
}

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let errors = py.import("vmcontainer._errors")?;
    let class = errors.getattr(class_name(err.kind()))?;
    let value = class.call1((err.to_string(),))?;
    if let Error::Template(TemplateError::MissingVariables { names }) = err {
        value.setattr("names", PyList::new(py, names)?)?;
    }
    Ok(PyErr::from_value(value))
}

/// An `InvalidInputError` raised by the binding itself, for values Python
/// can express but the core's types cannot (a port of 70000, negative
/// memory); the message has the core's shape.
#[cfg(feature = "devenv")]
pub(crate) fn invalid(what: &'static str, value: impl ToString, reason: &str) -> PyErr {
    to_py(Error::invalid(what, value.to_string(), reason))
}
