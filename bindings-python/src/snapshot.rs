//! `Snapshot`: a saved VM under the home's `snapshots/` directory, as a
//! Python object.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;

use crate::repr;

/// A snapshot: a VM's memory, devices and disk saved at one instant,
/// from which `Manager.run_snapshot` starts new containers. Read-only.
#[pyclass(module = "vmcontainer", frozen, eq)]
#[derive(PartialEq)]
pub struct Snapshot {
    inner: vmcontainer::Snapshot,
}

impl From<vmcontainer::Snapshot> for Snapshot {
    fn from(inner: vmcontainer::Snapshot) -> Self {
        Snapshot { inner }
    }
}

#[pymethods]
impl Snapshot {
    /// Its name (unique in the home).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }
    /// When it was taken; timezone-aware (UTC).
    #[getter]
    fn created_at(&self) -> DateTime<Utc> {
        self.inner.created_at
    }
    /// ID of the container it was taken from.
    #[getter]
    fn source_id(&self) -> &str {
        &self.inner.source_id
    }
    /// Name of that container at the time.
    #[getter]
    fn source_name(&self) -> &str {
        &self.inner.source_name
    }
    /// The image the source booted (still needed to resume).
    #[getter]
    fn image(&self) -> &str {
        &self.inner.image
    }
    /// Memory in MB of every VM resumed from it.
    #[getter]
    fn memory(&self) -> u32 {
        self.inner.memory
    }
    /// vCPUs of every VM resumed from it.
    #[getter]
    fn cpus(&self) -> u32 {
        self.inner.cpus
    }
    /// Whether it holds a disk (disk images; ISO and kernel guests have none).
    #[getter]
    fn disk(&self) -> bool {
        self.inner.disk
    }
    /// QEMU version that saved it; resuming needs the same.
    #[getter]
    fn qemu_version(&self) -> &str {
        &self.inner.qemu_version
    }
    /// QEMU machine type it was saved from.
    #[getter]
    fn machine(&self) -> &str {
        &self.inner.machine
    }
    /// Accelerator it ran under (`tcg`, `kvm`, `hvf`).
    #[getter]
    fn accel(&self) -> &str {
        &self.inner.accel
    }
    /// The guest-visible QEMU options it needs, in order.
    #[getter]
    fn devices(&self) -> Vec<String> {
        self.inner.devices.clone()
    }
    /// Its directory.
    #[getter]
    fn path(&self) -> Option<PathBuf> {
        self.inner.path.clone()
    }
    /// Bytes its files take on disk.
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let s = &self.inner;
        format!(
            "Snapshot(name={}, source_id={}, memory={}, size={})",
            repr(py, &s.name),
            repr(py, &s.source_id),
            s.memory,
            s.size
        )
    }
}
