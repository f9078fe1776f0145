//! OCI registries and the KubeVirt export: what `Manager.push`,
//! `Manager.pull` and `Manager.pulled_images` return, and the transfers
//! behind them (GIL released, Ctrl-C interrupts, progress on the calling
//! thread).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use vmcontainer::registry::{PullOptions, PushOptions, StoredImage};

use crate::blocking::interruptible_unless;
use crate::progress::Progress;
use crate::repr;

/// What `Manager.push` wrote. Read-only.
#[pyclass(module = "vmcontainer", frozen, eq)]
#[derive(PartialEq)]
pub struct PushReport {
    inner: vmcontainer::registry::PushReport,
}

#[pymethods]
impl PushReport {
    /// The reference pushed to, in canonical form.
    #[getter]
    fn reference(&self) -> &str {
        &self.inner.reference
    }
    /// `sha256:<hex>` of the manifest; `REPOSITORY@DIGEST` names exactly
    /// what was pushed.
    #[getter]
    fn digest(&self) -> &str {
        &self.inner.digest
    }
    /// The image's format (`iso`, `qcow2`, `vmdk`, `raw`, `kernel+initrd`).
    #[getter]
    fn format(&self) -> &'static str {
        self.inner.format.as_str()
    }
    /// `vmcontainer` (a VM image artifact) or `containerdisk`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.inner.kind
    }
    /// Bytes uploaded (all layers).
    #[getter]
    fn size(&self) -> u64 {
        self.inner.size
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "PushReport(reference={}, digest={}, kind={})",
            repr(py, &self.inner.reference),
            repr(py, &self.inner.digest),
            repr(py, self.inner.kind)
        )
    }
}

/// An image in the home's store of pulled images (`Manager.pull`,
/// `Manager.pulled_images`). Read-only.
#[pyclass(module = "vmcontainer", frozen, eq)]
#[derive(PartialEq)]
pub struct PulledImage {
    image: StoredImage,
    downloaded: u64,
    already_present: bool,
}

impl From<vmcontainer::registry::PulledImage> for PulledImage {
    fn from(p: vmcontainer::registry::PulledImage) -> Self {
        PulledImage {
            image: p.image,
            downloaded: p.downloaded,
            already_present: p.already_present,
        }
    }
}

impl From<StoredImage> for PulledImage {
    /// An entry of the store: present, nothing downloaded now.
    fn from(image: StoredImage) -> Self {
        PulledImage {
            image,
            downloaded: 0,
            already_present: true,
        }
    }
}

#[pymethods]
impl PulledImage {
    /// The reference it was pulled by, in canonical form.
    #[getter]
    fn reference(&self) -> &str {
        &self.image.reference
    }
    /// `sha256:<hex>` of its manifest.
    #[getter]
    fn digest(&self) -> &str {
        &self.image.digest
    }
    /// Its format (`iso`, `qcow2`, `vmdk`, `raw`, `kernel+initrd`).
    #[getter]
    fn format(&self) -> &'static str {
        self.image.format.as_str()
    }
    /// What `Manager.run` boots: the disk or ISO, or `NAME-kernel`.
    #[getter]
    fn path(&self) -> PathBuf {
        self.image.path.clone()
    }
    /// Total size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.image.size
    }
    /// When it was last pulled; timezone-aware (UTC).
    #[getter]
    fn pulled_at(&self) -> DateTime<Utc> {
        self.image.pulled
    }
    /// Bytes this pull transferred (0 when everything was present, and for
    /// the entries of `pulled_images`).
    #[getter]
    fn downloaded(&self) -> u64 {
        self.downloaded
    }
    /// Whether the content was in the store already (always for the
    /// entries of `pulled_images`).
    #[getter]
    fn already_present(&self) -> bool {
        self.already_present
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "PulledImage(reference={}, digest={}, path={})",
            repr(py, &self.image.reference),
            repr(py, &self.image.digest),
            repr(py, &self.image.path.display().to_string())
        )
    }
}

/// `Manager.push`: interruptible, progress on this thread; an exception in
/// `progress` stops the push and is raised.
pub(crate) fn push(
    py: Python<'_>,
    m: &vmcontainer::LinuxKitManager,
    image: &Path,
    reference: &str,
    containerdisk: bool,
    plain_http: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<PushReport> {
    let p = Progress::new(progress);
    let mut report = |done, total| p.report(done, total);
    let opts = PushOptions {
        containerdisk,
        plain_http,
        progress: Some(&mut report),
    };
    let fut = m.push(image, reference, opts);
    let inner = interruptible_unless(py, fut, &|| p.failed(), || p.take_error())?;
    Ok(PushReport { inner })
}

/// `Manager.pull`, as [`push`].
pub(crate) fn pull(
    py: Python<'_>,
    m: &vmcontainer::LinuxKitManager,
    reference: &str,
    plain_http: bool,
    progress: Option<Py<PyAny>>,
) -> PyResult<PulledImage> {
    let p = Progress::new(progress);
    let mut report = |done, total| p.report(done, total);
    let opts = PullOptions {
        plain_http,
        progress: Some(&mut report),
    };
    let fut = m.pull(reference, opts);
    Ok(interruptible_unless(py, fut, &|| p.failed(), || p.take_error())?.into())
}
