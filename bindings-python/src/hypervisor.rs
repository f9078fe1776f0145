//! Hypervisor discovery, image formats and IDs.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::blocking::detached;
use crate::repr;

/// A hypervisor backend (`qemu` or `hyperkit`).
#[pyclass(module = "vmcontainer", frozen)]
pub struct Hypervisor {
    inner: Arc<dyn vmcontainer::Hypervisor>,
}

#[pymethods]
impl Hypervisor {
    /// `qemu` or `hyperkit`.
    #[getter]
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    /// Whether it can run on this host.
    fn available(&self, py: Python<'_>) -> bool {
        py.detach(|| self.inner.available())
    }

    /// The accelerator VMs started now would use (`kvm`, `hvf` or `tcg`)
    /// and why it was chosen, as `(accelerator, reason)`. May probe the
    /// host for a few seconds the first time.
    fn accel(&self, py: Python<'_>) -> PyResult<(&'static str, String)> {
        let c = detached(py, || self.inner.accel())?;
        Ok((c.accel.as_str(), c.reason))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!("Hypervisor(name={})", repr(py, self.inner.name()))
    }
}

/// The best hypervisor installed here (Hyperkit on macOS when present,
/// else QEMU); raises `HypervisorUnavailableError` naming what to install.
#[pyfunction]
pub fn detect_hypervisor(py: Python<'_>) -> PyResult<Hypervisor> {
    let inner = detached(py, vmcontainer::detect_hypervisor)?;
    Ok(Hypervisor { inner })
}

/// The hypervisor called `name` (`qemu` or `hyperkit`, any case); raises
/// `InvalidInputError` for an unknown name and
/// `HypervisorUnavailableError` when it is not installed.
#[pyfunction]
pub fn get_hypervisor(py: Python<'_>, name: &str) -> PyResult<Hypervisor> {
    let inner = detached(py, || vmcontainer::get_hypervisor(name))?;
    Ok(Hypervisor { inner })
}

/// `iso`, `qcow2`, `vmdk`, `raw`, `kernel+initrd` or `unknown`, by
/// extension and, when that is missing or lies, by content.
#[pyfunction]
pub fn detect_image_format(py: Python<'_>, path: PathBuf) -> &'static str {
    py.detach(|| vmcontainer::detect_image_format(&path).as_str())
}

/// A new container ID: 8 lower-case hex characters from the OS CSPRNG.
#[pyfunction]
pub fn generate_id() -> String {
    vmcontainer::generate_id()
}
