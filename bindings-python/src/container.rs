//! `Container` (a state-file record) and `ExecResult` (what `exec` returns)
//! as Python objects.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};

use crate::repr;

/// A container as recorded in the state file. Read-only; `status` and
/// `format` are the lower-case strings of the JSON file.
#[pyclass(module = "vmcontainer", frozen, eq)]
#[derive(PartialEq)]
pub struct Container {
    inner: vmcontainer::Container,
}

impl From<vmcontainer::Container> for Container {
    fn from(inner: vmcontainer::Container) -> Self {
        Container { inner }
    }
}

#[pymethods]
impl Container {
    /// 8 lower-case hex characters.
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// Name (the ID when none was given).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// Absolute image path.
    #[getter]
    fn image(&self) -> &str {
        &self.inner.image
    }
    /// `running`, `stopped`, `error`, `killed` (ended by a signal `stop`
    /// did not send) or `starting` (recorded before the VM starts); a
    /// newer version's status as written.
    #[getter]
    fn status(&self) -> &str {
        self.inner.status.as_str()
    }
    /// PID of the hypervisor process.
    #[getter]
    fn pid(&self) -> i32 {
        self.inner.pid
    }
    /// When the VM was (last) started; timezone-aware (UTC).
    #[getter]
    fn started_at(&self) -> DateTime<Utc> {
        self.inner.started_at
    }
    /// When the VM was seen to stop, if it has.
    #[getter]
    fn stopped_at(&self) -> Option<DateTime<Utc>> {
        self.inner.stopped_at
    }
    /// Forwarded ports, host port → guest port.
    #[getter]
    fn ports(&self) -> BTreeMap<u16, u16> {
        self.inner.ports.clone()
    }
    /// Memory in MB.
    #[getter]
    fn memory(&self) -> u32 {
        self.inner.memory
    }
    /// Virtual CPUs.
    #[getter]
    fn cpus(&self) -> u32 {
        self.inner.cpus
    }
    /// Loopback host port forwarded to the guest's SSH port.
    #[getter]
    fn ssh_port(&self) -> u16 {
        self.inner.ssh_port
    }
    /// Private key `exec` uses.
    #[getter]
    fn ssh_key(&self) -> Option<&str> {
        self.inner.ssh_key.as_deref()
    }
    /// Shared directories, host path → guest path.
    #[getter]
    fn volumes(&self) -> BTreeMap<String, String> {
        self.inner.volumes.clone()
    }
    /// `qemu` or `hyperkit`.
    #[getter]
    fn hypervisor(&self) -> Option<&str> {
        self.inner.hypervisor.as_deref()
    }
    /// Accelerator chosen at start: `kvm`, `hvf` or `tcg`.
    #[getter]
    fn accel(&self) -> Option<&str> {
        self.inner.accel.as_deref()
    }
    /// Image format: `iso`, `qcow2`, `vmdk`, `raw` or `kernel+initrd`.
    #[getter]
    fn format(&self) -> Option<&'static str> {
        self.inner.format.map(|f| f.as_str())
    }
    /// Address forwarded ports listen on, as recorded before each mapping
    /// kept its own (see `bind_addresses`).
    #[getter]
    fn bind_address(&self) -> Option<String> {
        self.inner.bind_address.map(|a| a.to_string())
    }
    /// Listen address of every forwarded port that does not listen on
    /// 127.0.0.1, host port → address.
    #[getter]
    fn bind_addresses(&self) -> BTreeMap<u16, String> {
        self.inner
            .wide_forwards()
            .into_iter()
            .map(|(h, a)| (h, a.to_string()))
            .collect()
    }
    /// Exit code of the hypervisor, when known (foreground runs).
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.inner.exit_code
    }
    /// Signal that ended the hypervisor, when one did.
    #[getter]
    fn exit_signal(&self) -> Option<i32> {
        self.inner.exit_signal
    }
    /// How the VM ended, in words; `None` while it has not.
    #[getter]
    fn exit_reason(&self) -> Option<&str> {
        self.inner.exit_reason.as_deref()
    }
    /// The snapshot this container was resumed from, if any.
    #[getter]
    fn snapshot(&self) -> Option<&str> {
        self.inner.snapshot.as_deref()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let c = &self.inner;
        format!(
            "Container(id={}, name={}, status={}, image={}, ssh_port={})",
            repr(py, &c.id),
            repr(py, &c.name),
            repr(py, c.status.as_str()),
            repr(py, &c.image),
            c.ssh_port
        )
    }
}

/// Outcome of `Manager.exec`: the command's exit code and its output as
/// bytes (decode with `.decode()`; the guest may print anything). Unpacks
/// like a tuple: `code, out, err = m.exec(...)`.
#[pyclass(module = "vmcontainer", frozen, eq)]
#[derive(PartialEq)]
pub struct ExecResult {
    exit_code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl From<vmcontainer::ExecOutput> for ExecResult {
    fn from(o: vmcontainer::ExecOutput) -> Self {
        ExecResult {
            exit_code: o.exit_code,
            stdout: o.stdout,
            stderr: o.stderr,
        }
    }
}

impl ExecResult {
    fn as_tuple<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        (
            self.exit_code,
            PyBytes::new(py, &self.stdout),
            PyBytes::new(py, &self.stderr),
        )
            .into_pyobject(py)
    }
}

#[pymethods]
impl ExecResult {
    #[new]
    fn new(exit_code: i32, stdout: Vec<u8>, stderr: Vec<u8>) -> Self {
        ExecResult {
            exit_code,
            stdout,
            stderr,
        }
    }
    /// The remote command's exit status (255 when SSH itself failed).
    #[getter]
    fn exit_code(&self) -> i32 {
        self.exit_code
    }
    /// Standard output.
    #[getter]
    fn stdout<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.stdout)
    }
    /// Standard error.
    #[getter]
    fn stderr<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.stderr)
    }
    /// Whether the exit code is 0.
    #[getter]
    fn ok(&self) -> bool {
        self.exit_code == 0
    }
    fn __len__(&self) -> usize {
        3
    }
    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyAny>> {
        self.as_tuple(py)?.as_any().get_item(index)
    }
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.as_tuple(py)?.as_any().try_iter()?.into_any())
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!(
            "ExecResult(exit_code={}, stdout={}, stderr={})",
            self.exit_code,
            PyBytes::new(py, &self.stdout).repr()?,
            PyBytes::new(py, &self.stderr).repr()?
        ))
    }
}
