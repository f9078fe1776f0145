//! The dev environment (`vmc_devenv_t`): install the dev image with
//! progress, check for updates, boot, stop, status. Configuration comes
//! from `HOME/config.yaml` as for the CLI's `vmcontainer dev`.

use std::ffi::{c_char, c_void, CString};
use std::path::PathBuf;
use std::ptr;

use vmcontainer::devenv::blocking::DevOps;
use vmcontainer::devenv::{BootOptions, DevStatus, InstallReport};
use vmcontainer::CancelToken;

use crate::container::vmc_container_t;
use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{
    self, guard, guard_value, into_handle, malloc_bytes, millis, obj, obj_mut, opt_out_arg,
    opt_str_arg, out_arg, out_value, str_arg, to_cstring, FfiResult,
};
use crate::progress::{sender_sink, vmc_progress_fn, with_progress};

/// The dev environment of one home directory. Thread-safe like
/// `vmc_manager_t`. Release with `vmc_devenv_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_devenv_t {
    pub(crate) inner: DevOps,
    /// The token it is bound to (`vmc_devenv_with_cancel`), if any.
    cancel: Option<CancelToken>,
}

impl vmc_devenv_t {
    /// The same dev environment bound to `token`.
    pub(crate) fn with_cancel(&self, token: CancelToken) -> Self {
        vmc_devenv_t {
            inner: self.inner.with_cancel(token.clone()),
            cancel: Some(token),
        }
    }

    /// Runs a download (`install` or `update`) on the runtime and hands its
    /// progress to `progress` here, on the caller's thread.
    ///
    /// # Safety
    /// `progress` is NULL or a valid function fitting `user_data`.
    unsafe fn download<T, F, Fut>(
        &self,
        what: &'static str,
        progress: vmc_progress_fn,
        user_data: *mut c_void,
        run: F,
    ) -> FfiResult<T>
    where
        T: Send + 'static,
        F: FnOnce(vmcontainer::devenv::DevOps, std::sync::mpsc::Sender<(u64, Option<u64>)>) -> Fut,
        Fut: std::future::Future<Output = vmcontainer::Result<T>> + Send + 'static,
    {
        let inner = self.inner.inner().clone();
        // SAFETY: forwarded caller guarantee.
        unsafe {
            with_progress(
                self.cancel.clone(),
                what.to_string(),
                progress,
                user_data,
                |tx| run(inner, tx),
            )
        }
    }
}

/// Opens the dev environment of `home` (NULL: `$VMCONTAINER_HOME`, else
/// `~/.core`), reading its `config.yaml` (an invalid one is an error that
/// names the file and line). Free `*out` with `vmc_devenv_free`.
///
/// # Safety
/// `home` is NULL or a C string; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_new(
    home: *const c_char,
    out: *mut *mut vmc_devenv_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let home = opt_str_arg(home, "home")?.map(PathBuf::from);
            let out = out_arg(out, "out")?;
            let inner = DevOps::new(home.as_deref())?;
            out.set(into_handle(vmc_devenv_t {
                inner,
                cancel: None,
            }));
            Ok(())
        })
    }
}

/// Releases a dev environment. NULL is ignored; the dev VM keeps running.
///
/// # Safety
/// `d` is NULL or from `vmc_devenv_new`, freed only once, with no call on
/// it still running.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_free(d: *mut vmc_devenv_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(d) }
}

/// Whether the dev image is downloaded (false for NULL).
///
/// # Safety
/// `d` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_is_installed(d: *const vmc_devenv_t) -> bool {
    // SAFETY: forwarded caller guarantee.
    guard_value(false, || {
        unsafe { d.as_ref() }.map(|d| d.inner.is_installed())
    })
}

/// Downloads and installs the latest dev image (sha256-verified, resumable,
/// never half-installed), calling `progress` (may be NULL) as it goes.
/// Installing the release that is already there downloads nothing.
/// `report` may be NULL; otherwise free `*report` with
/// `vmc_devenv_install_report_free`. A failed download (HTTP error or
/// status, interrupted, no source could provide the image) is
/// `VMC_ERROR_DOWNLOAD`; an image that cannot be verified (no published
/// checksum, a malformed one, a mismatch) is `VMC_ERROR_CHECKSUM`; a source
/// that is not configured is `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// `d` is live; `progress` NULL or a valid function fitting `user_data`;
/// `report` and `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_install(
    d: *const vmc_devenv_t,
    progress: vmc_progress_fn,
    user_data: *mut c_void,
    report: *mut *mut vmc_devenv_install_report_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let report = opt_out_arg(report);
            let r = d.download("install", progress, user_data, |inner, tx| async move {
                let mut sink = sender_sink(tx);
                inner.install(&mut sink).await
            })?;
            if let Some(out) = report {
                out.set(into_handle(vmc_devenv_install_report_t::new(r)));
            }
            Ok(())
        })
    }
}

/// Installs the latest dev image if it differs from the installed one,
/// with progress as for `vmc_devenv_install`. `*report` (may be NULL) is
/// set to NULL when the installed image is already the latest; otherwise
/// free it with `vmc_devenv_install_report_free`. Refused while the dev VM
/// runs (`VMC_ERROR_RUNNING`); a stopped dev VM is removed, since its disk
/// belongs to the old image.
///
/// # Safety
/// As for `vmc_devenv_install`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_update(
    d: *const vmc_devenv_t,
    progress: vmc_progress_fn,
    user_data: *mut c_void,
    report: *mut *mut vmc_devenv_install_report_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let report = opt_out_arg(report);
            let r = d.download("update", progress, user_data, |inner, tx| async move {
                let mut sink = sender_sink(tx);
                inner.update(&mut sink).await
            })?;
            if let (Some(out), Some(r)) = (report, r) {
                out.set(into_handle(vmc_devenv_install_report_t::new(r)));
            }
            Ok(())
        })
    }
}

/// Compares the installed dev image with the latest release: stores the
/// versions in `*current` and `*latest` (each may be NULL; free the strings
/// with `vmc_string_free`) and whether they differ in `*has_update` (may be
/// NULL).
///
/// # Safety
/// `d` is live; the out-parameters and `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_check_update(
    d: *const vmc_devenv_t,
    current: *mut *mut c_char,
    latest: *mut *mut c_char,
    has_update: *mut bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let current = opt_out_arg(current);
            let latest = opt_out_arg(latest);
            let info = d.inner.check_update()?;
            let cur = malloc_bytes(info.current.as_bytes())?;
            let lat = malloc_bytes(info.latest.as_bytes()).inspect_err(|_| ffi::free_bytes(cur))?;
            for (out, p) in [(current, cur), (latest, lat)] {
                match out {
                    Some(out) => out.set(p),
                    None => ffi::free_bytes(p),
                }
            }
            if !has_update.is_null() {
                has_update.write(info.has_update);
            }
            Ok(())
        })
    }
}

/// Boots the dev VM (detached, named `core-dev`) with the project directory
/// at `/app`, waits for its SSH server and mounts the project. `opts` may
/// be NULL (defaults and `config.yaml`). Not installed →
/// `VMC_ERROR_NOT_FOUND`; already running (without fresh) →
/// `VMC_ERROR_RUNNING`. `out` may be NULL; otherwise free `*out` with
/// `vmc_container_free`.
///
/// # Safety
/// `d` is live; `opts` NULL or live; `out` and `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_boot_options_t,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let opts = opts
                .as_ref()
                .map_or_else(BootOptions::default, |o| o.inner.clone());
            let out = opt_out_arg(out);
            let c = d.inner.boot(opts)?;
            if let Some(out) = out {
                out.set(into_handle(vmc_container_t::new(c)));
            }
            Ok(())
        })
    }
}

/// Stops the dev VM (ACPI power-down first); the container is kept, so the
/// next boot resumes its disk. Not running → `VMC_ERROR_NOT_RUNNING`.
/// `out` may be NULL; otherwise free `*out` with `vmc_container_free`.
///
/// # Safety
/// `d` is live; `out` and `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_stop(
    d: *const vmc_devenv_t,
    out: *mut *mut vmc_container_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let out = opt_out_arg(out);
            let c = d.inner.stop()?;
            if let Some(out) = out {
                out.set(into_handle(vmc_container_t::new(c)));
            }
            Ok(())
        })
    }
}

/// Stores whether the dev VM is running in `*running`.
///
/// # Safety
/// `d` is live; `running` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_is_running(
    d: *const vmc_devenv_t,
    running: *mut bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let out = out_value(running, "running")?;
            out.set(d.inner.is_running()?);
            Ok(())
        })
    }
}

/// The dev environment's status. Free `*out` with
/// `vmc_devenv_status_free`.
///
/// # Safety
/// `d` is live; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_status(
    d: *const vmc_devenv_t,
    out: *mut *mut vmc_devenv_status_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let out = out_arg(out, "out")?;
            out.set(into_handle(vmc_devenv_status_t::new(d.inner.status()?)));
            Ok(())
        })
    }
}

// ------------------------------------------------------------------------
// Boot options.

/// How to boot the dev VM. Unset values come from `config.yaml` (`dev:`),
/// then the defaults: 4096 MB, 2 CPUs, the current directory as project,
/// a 60 s wait for SSH. Release with `vmc_devenv_boot_options_free`.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct vmc_devenv_boot_options_t {
    pub(crate) inner: BootOptions,
}

/// New boot options with nothing set; NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn vmc_devenv_boot_options_new() -> *mut vmc_devenv_boot_options_t {
    guard_value(ptr::null_mut(), || {
        Some(into_handle(vmc_devenv_boot_options_t::default()))
    })
}

/// Releases boot options. NULL is ignored.
///
/// # Safety
/// `opts` is NULL or from `vmc_devenv_boot_options_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_boot_options_free(opts: *mut vmc_devenv_boot_options_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(opts) }
}

/// Runs `f` on the options behind `opts`.
///
/// # Safety
/// `opts` is NULL or live and used by no other thread; `err` NULL or
/// writable.
unsafe fn with_boot_options(
    opts: *mut vmc_devenv_boot_options_t,
    err: *mut *mut vmc_error_t,
    f: impl FnOnce(&mut BootOptions) -> FfiResult<()>,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { guard(err, || f(&mut obj_mut(opts, "options")?.inner)) }
}

/// Memory in MB.
///
/// # Safety
/// `opts` is NULL or live and not used concurrently; `err` NULL or
/// writable. (The same holds for every boot-option setter.)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot_options_set_memory_mb(
    opts: *mut vmc_devenv_boot_options_t,
    memory_mb: u32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_boot_options(opts, err, |o| {
            o.memory = Some(memory_mb);
            Ok(())
        })
    }
}

/// Number of virtual CPUs.
///
/// # Safety
/// See `vmc_devenv_boot_options_set_memory_mb`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot_options_set_cpus(
    opts: *mut vmc_devenv_boot_options_t,
    cpus: u32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_boot_options(opts, err, |o| {
            o.cpus = Some(cpus);
            Ok(())
        })
    }
}

/// Replace an existing dev VM (running or not) with a new one.
///
/// # Safety
/// See `vmc_devenv_boot_options_set_memory_mb`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot_options_set_fresh(
    opts: *mut vmc_devenv_boot_options_t,
    fresh: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_boot_options(opts, err, |o| {
            o.fresh = fresh;
            Ok(())
        })
    }
}

/// Project directory shared at `/app`.
///
/// # Safety
/// See `vmc_devenv_boot_options_set_memory_mb`; `path` is a C string.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot_options_set_project(
    opts: *mut vmc_devenv_boot_options_t,
    path: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_boot_options(opts, err, |o| {
            o.project = Some(PathBuf::from(str_arg(path, "path")?));
            Ok(())
        })
    }
}

/// Private key for SSH.
///
/// # Safety
/// See `vmc_devenv_boot_options_set_memory_mb`; `path` is a C string.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot_options_set_ssh_key(
    opts: *mut vmc_devenv_boot_options_t,
    path: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_boot_options(opts, err, |o| {
            o.ssh_key = Some(PathBuf::from(str_arg(path, "path")?));
            Ok(())
        })
    }
}

/// How long boot waits for the guest's SSH server.
///
/// # Safety
/// See `vmc_devenv_boot_options_set_memory_mb`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_boot_options_set_ready_timeout_ms(
    opts: *mut vmc_devenv_boot_options_t,
    timeout_ms: u64,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with_boot_options(opts, err, |o| {
            o.ready_timeout = millis(timeout_ms);
            Ok(())
        })
    }
}

// ------------------------------------------------------------------------
// Install report.

/// What `vmc_devenv_install` did. Release with
/// `vmc_devenv_install_report_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_devenv_install_report_t {
    report: InstallReport,
    path: CString,
    version: CString,
    source: CString,
    sha256: CString,
}

impl vmc_devenv_install_report_t {
    fn new(report: InstallReport) -> Self {
        vmc_devenv_install_report_t {
            path: to_cstring(report.path.as_os_str().as_encoded_bytes()),
            version: to_cstring(report.version.as_str()),
            source: to_cstring(report.source.as_str()),
            sha256: to_cstring(report.sha256.as_str()),
            report,
        }
    }
}

/// Reads a field of a possibly-NULL report.
fn report_field<T>(
    r: *const vmc_devenv_install_report_t,
    fallback: T,
    f: impl FnOnce(&vmc_devenv_install_report_t) -> T,
) -> T {
    // SAFETY: every accessor's contract: NULL or a live report.
    guard_value(fallback, || unsafe { r.as_ref() }.map(f))
}

/// The installed image file. NULL for NULL.
///
/// # Safety
/// `r` is NULL or a live report (also for the accessors below).
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_path(
    r: *const vmc_devenv_install_report_t,
) -> *const c_char {
    report_field(r, ptr::null(), |r| r.path.as_ptr())
}

/// The installed version. NULL for NULL.
///
/// # Safety
/// See `vmc_devenv_install_report_path`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_version(
    r: *const vmc_devenv_install_report_t,
) -> *const c_char {
    report_field(r, ptr::null(), |r| r.version.as_ptr())
}

/// Where it came from (`"github"`, `"cdn"`). NULL for NULL.
///
/// # Safety
/// See `vmc_devenv_install_report_path`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_source(
    r: *const vmc_devenv_install_report_t,
) -> *const c_char {
    report_field(r, ptr::null(), |r| r.source.as_ptr())
}

/// Its sha256, lower-case hex. NULL for NULL.
///
/// # Safety
/// See `vmc_devenv_install_report_path`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_sha256(
    r: *const vmc_devenv_install_report_t,
) -> *const c_char {
    report_field(r, ptr::null(), |r| r.sha256.as_ptr())
}

/// Its size in bytes (0 for NULL).
///
/// # Safety
/// See `vmc_devenv_install_report_path`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_size(
    r: *const vmc_devenv_install_report_t,
) -> u64 {
    report_field(r, 0, |r| r.report.size)
}

/// Bytes reused from an interrupted earlier download (0 for NULL).
///
/// # Safety
/// See `vmc_devenv_install_report_path`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_resumed_from(
    r: *const vmc_devenv_install_report_t,
) -> u64 {
    report_field(r, 0, |r| r.report.resumed_from)
}

/// True when that release was already installed and nothing was downloaded
/// (false for NULL).
///
/// # Safety
/// See `vmc_devenv_install_report_path`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_already_installed(
    r: *const vmc_devenv_install_report_t,
) -> bool {
    report_field(r, false, |r| r.report.already_installed)
}

/// Releases a report. NULL is ignored.
///
/// # Safety
/// `r` is NULL or from `vmc_devenv_install`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_install_report_free(r: *mut vmc_devenv_install_report_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(r) }
}

// ------------------------------------------------------------------------
// Status.

/// A snapshot of the dev environment's status. Release with
/// `vmc_devenv_status_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_devenv_status_t {
    status: DevStatus,
    image_version: Option<CString>,
    image_path: CString,
    container_id: Option<CString>,
    project: Option<CString>,
}

impl vmc_devenv_status_t {
    fn new(status: DevStatus) -> Self {
        let path = |p: &PathBuf| to_cstring(p.as_os_str().as_encoded_bytes());
        vmc_devenv_status_t {
            image_version: status.image_version.as_deref().map(to_cstring),
            image_path: path(&status.image_path),
            container_id: status.container_id.as_deref().map(to_cstring),
            project: status.project.as_ref().map(path),
            status,
        }
    }
}

/// Reads a field of a possibly-NULL status.
fn status_field<T>(
    s: *const vmc_devenv_status_t,
    fallback: T,
    f: impl FnOnce(&vmc_devenv_status_t) -> T,
) -> T {
    // SAFETY: every accessor's contract: NULL or a live status.
    guard_value(fallback, || unsafe { s.as_ref() }.map(f))
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |s| s.as_ptr())
}

/// Whether the dev image is downloaded (false for NULL).
///
/// # Safety
/// `s` is NULL or a live status (also for the accessors below).
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_installed(s: *const vmc_devenv_status_t) -> bool {
    status_field(s, false, |s| s.status.installed)
}

/// Whether the dev VM is running (false for NULL).
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_running(s: *const vmc_devenv_status_t) -> bool {
    status_field(s, false, |s| s.status.running)
}

/// Installed image version; NULL when not installed.
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_image_version(
    s: *const vmc_devenv_status_t,
) -> *const c_char {
    status_field(s, ptr::null(), |s| opt_ptr(&s.image_version))
}

/// Path of the dev image (whether or not it exists). NULL for NULL.
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_image_path(
    s: *const vmc_devenv_status_t,
) -> *const c_char {
    status_field(s, ptr::null(), |s| s.image_path.as_ptr())
}

/// The dev VM's container ID; NULL when there is none.
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_container_id(
    s: *const vmc_devenv_status_t,
) -> *const c_char {
    status_field(s, ptr::null(), |s| opt_ptr(&s.container_id))
}

/// The dev VM's memory in MB (0 when there is no VM).
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_memory_mb(s: *const vmc_devenv_status_t) -> u32 {
    status_field(s, 0, |s| s.status.memory.unwrap_or(0))
}

/// The dev VM's vCPUs (0 when there is no VM).
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_cpus(s: *const vmc_devenv_status_t) -> u32 {
    status_field(s, 0, |s| s.status.cpus.unwrap_or(0))
}

/// Host port of the guest's SSH (0 unless running).
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_ssh_port(s: *const vmc_devenv_status_t) -> u16 {
    status_field(s, 0, |s| s.status.ssh_port.unwrap_or(0))
}

/// Stores the seconds since the VM started in `*secs` and returns true
/// when it is running; false otherwise.
///
/// # Safety
/// See `vmc_devenv_status_installed`; `secs` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_uptime_secs(
    s: *const vmc_devenv_status_t,
    secs: *mut u64,
) -> bool {
    match status_field(s, None, |s| s.status.uptime_secs) {
        Some(v) if !secs.is_null() => {
            // SAFETY: checked non-NULL; the caller guarantees it is writable.
            unsafe { secs.write(v) };
            true
        }
        _ => false,
    }
}

/// Project directory shared at `/app`; NULL when there is no VM.
///
/// # Safety
/// See `vmc_devenv_status_installed`.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_project(s: *const vmc_devenv_status_t) -> *const c_char {
    status_field(s, ptr::null(), |s| opt_ptr(&s.project))
}

/// Releases a status. NULL is ignored.
///
/// # Safety
/// `s` is NULL or from `vmc_devenv_status`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_status_free(s: *mut vmc_devenv_status_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(s) }
}
