//! OCI registries and KubeVirt: push an image (`vmc_push_options_t`), pull
//! one into the home's store (`vmc_pull_options_t`), list what was pulled,
//! and export a container or image as a KubeVirt `VirtualMachine`.
//! Push and pull report progress through an optional `vmc_progress_fn`
//! and can be interrupted through a `vmc_manager_with_cancel` handle.

use std::ffi::{c_char, c_void};
use std::path::Path;

use vmcontainer::registry::{PullOptions, PushOptions};

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{
    self, guard, guard_value, malloc_bytes, obj, obj_mut, opt_out_arg, opt_str_arg, out_arg,
    str_arg, FfiResult, Out,
};
use crate::manager::vmc_manager_t;
use crate::progress::{sender_sink, vmc_progress_fn, with_progress};

/// Options for `vmc_manager_push`. Defaults: a vmcontainer VM image (not a
/// containerDisk), HTTPS unless the registry is on loopback. Release with
/// `vmc_push_options_free`.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct vmc_push_options_t {
    containerdisk: bool,
    plain_http: bool,
}

/// Options for `vmc_manager_pull`. Default: HTTPS unless the registry is on
/// loopback. Release with `vmc_pull_options_free`.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct vmc_pull_options_t {
    plain_http: bool,
}

/// New push options with the defaults; NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn vmc_push_options_new() -> *mut vmc_push_options_t {
    guard_value(std::ptr::null_mut(), || {
        Some(ffi::into_handle(vmc_push_options_t::default()))
    })
}

/// Releases push options. NULL is ignored.
///
/// # Safety
/// `opts` is NULL or from `vmc_push_options_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_push_options_free(opts: *mut vmc_push_options_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(opts) }
}

/// Push a KubeVirt containerDisk (an OCI image whose layer holds the disk
/// under `/disk/`; a vmdk is converted to qcow2 first) instead of a
/// vmcontainer VM image. `vmc_manager_export_kubevirt` then finds it.
///
/// # Safety
/// `opts` is NULL or live and not used concurrently; `err` is NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_push_options_set_containerdisk(
    opts: *mut vmc_push_options_t,
    containerdisk: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            obj_mut(opts, "options")?.containerdisk = containerdisk;
            Ok(())
        })
    }
}

/// Allow plain HTTP to a registry that is not on loopback (loopback
/// registries may always use it).
///
/// # Safety
/// See `vmc_push_options_set_containerdisk`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_push_options_set_plain_http(
    opts: *mut vmc_push_options_t,
    plain_http: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            obj_mut(opts, "options")?.plain_http = plain_http;
            Ok(())
        })
    }
}

/// New pull options with the defaults; NULL only if memory is exhausted.
#[no_mangle]
pub extern "C" fn vmc_pull_options_new() -> *mut vmc_pull_options_t {
    guard_value(std::ptr::null_mut(), || {
        Some(ffi::into_handle(vmc_pull_options_t::default()))
    })
}

/// Releases pull options. NULL is ignored.
///
/// # Safety
/// `opts` is NULL or from `vmc_pull_options_new`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_pull_options_free(opts: *mut vmc_pull_options_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(opts) }
}

/// Allow plain HTTP to a registry that is not on loopback.
///
/// # Safety
/// `opts` is NULL or live and not used concurrently; `err` is NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_pull_options_set_plain_http(
    opts: *mut vmc_pull_options_t,
    plain_http: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            obj_mut(opts, "options")?.plain_http = plain_http;
            Ok(())
        })
    }
}

/// Stores `value` as JSON in an optional out-parameter.
fn give_json(out: Option<Out<*mut c_char>>, value: &impl serde::Serialize) -> FfiResult<()> {
    if let Some(out) = out {
        let text = serde_json::to_string(value)
            .map_err(|e| Failure::internal(format!("serializing the result: {e}")))?;
        out.set(malloc_bytes(text.as_bytes())?);
    }
    Ok(())
}

/// Stores `text` in an optional out-parameter.
fn give_str(out: Option<Out<*mut c_char>>, text: &[u8]) -> FfiResult<()> {
    if let Some(out) = out {
        out.set(malloc_bytes(text)?);
    }
    Ok(())
}

/// Pushes the image file `image` (`.iso`, `.qcow2`, `.vmdk`, `.raw`/`.img`,
/// or a LinuxKit `NAME-kernel` with its initrd and cmdline) to `reference`
/// (`REGISTRY/REPOSITORY[:TAG]`) as an OCI artifact, or as a KubeVirt
/// containerDisk (`opts`, NULL: the defaults). Credentials come from
/// `REGISTRY_AUTH` or Docker's config file, as for the CLI. `progress` (may
/// be NULL) receives the bytes uploaded. The manifest is written last: a
/// failed push never leaves the tag pointing at missing blobs.
///
/// `*digest` (may be NULL) is the manifest's `sha256:...` digest; `*json`
/// (may be NULL) the whole report as JSON (`reference`, `digest`,
/// `format`, `kind`, `size`), as `vmcontainer push --json` prints it. Free
/// both with `vmc_string_free`. A malformed reference or an image that
/// cannot be pushed is `VMC_ERROR_INVALID_INPUT`; a registry that is down,
/// refuses access or answers badly is `VMC_ERROR_DOWNLOAD`.
///
/// # Safety
/// `m` is a live manager; `image` and `reference` C strings; `opts` NULL
/// or live; `progress` NULL or a valid function fitting `user_data`;
/// `digest`, `json` and `err` NULL or writable.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vmc_manager_push(
    m: *const vmc_manager_t,
    image: *const c_char,
    reference: *const c_char,
    opts: *const vmc_push_options_t,
    progress: vmc_progress_fn,
    user_data: *mut c_void,
    digest: *mut *mut c_char,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let image = Path::new(str_arg(image, "image")?).to_path_buf();
            let reference = str_arg(reference, "reference")?.to_string();
            let (containerdisk, plain_http) = opts
                .as_ref()
                .map_or((false, false), |o| (o.containerdisk, o.plain_http));
            let (digest, json) = (opt_out_arg(digest), opt_out_arg(json));
            let core = m.inner.inner().clone();
            let what = format!("push to {reference}");
            let r = with_progress(
                m.inner.cancel_token().cloned(),
                what,
                progress,
                user_data,
                |tx| async move {
                    let mut sink = sender_sink(tx);
                    let opts = PushOptions {
                        containerdisk,
                        plain_http,
                        progress: Some(&mut sink),
                    };
                    core.push(&image, &reference, opts).await
                },
            )?;
            give_str(digest, r.digest.as_bytes())?;
            give_json(json, &r)
        })
    }
}

/// Pulls `reference` (`REGISTRY/REPOSITORY[:TAG]` or `...@sha256:DIGEST`)
/// into the home's image store (`images/oci/`), verifying every digest;
/// content already there is not downloaded again, an interrupted pull
/// resumes, and a digest mismatch installs nothing
/// (`VMC_ERROR_CHECKSUM`). `opts` may be NULL (the defaults); `progress`
/// (may be NULL) receives the bytes downloaded.
///
/// `*path` (may be NULL) is the file `vmc_manager_run` boots (a disk or
/// ISO, or `NAME-kernel`); `vmc_manager_run` also takes the reference
/// itself. `*json` (may be NULL) is the whole result as JSON
/// (`reference`, `digest`, `format`, `path`, `files`, `size`, `pulled`,
/// `downloaded`, `already_present`). Free both with `vmc_string_free`.
/// A missing tag or repository, a registry that is down or refuses access
/// is `VMC_ERROR_DOWNLOAD`; a reference that is malformed or names
/// something that is not a VM image is `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// `m` is a live manager; `reference` a C string; `opts` NULL or live;
/// `progress` NULL or a valid function fitting `user_data`; `path`, `json`
/// and `err` NULL or writable.
#[no_mangle]
#[must_use]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn vmc_manager_pull(
    m: *const vmc_manager_t,
    reference: *const c_char,
    opts: *const vmc_pull_options_t,
    progress: vmc_progress_fn,
    user_data: *mut c_void,
    path: *mut *mut c_char,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let reference = str_arg(reference, "reference")?.to_string();
            let plain_http = opts.as_ref().is_some_and(|o| o.plain_http);
            let (path, json) = (opt_out_arg(path), opt_out_arg(json));
            let core = m.inner.inner().clone();
            let what = format!("pull of {reference}");
            let r = with_progress(
                m.inner.cancel_token().cloned(),
                what,
                progress,
                user_data,
                |tx| async move {
                    let mut sink = sender_sink(tx);
                    let opts = PullOptions {
                        plain_http,
                        progress: Some(&mut sink),
                    };
                    core.pull(&reference, opts).await
                },
            )?;
            give_str(path, r.image.path.as_os_str().as_encoded_bytes())?;
            give_json(json, &r)
        })
    }
}

/// Every image pulled into the home's store, as a JSON array of objects
/// (`reference`, `digest`, `format`, `path`, `files`, `size`, `pulled`).
/// Free `*json` with `vmc_string_free`.
///
/// # Safety
/// `m` is a live manager; `json` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_pulled_images(
    m: *const vmc_manager_t,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let out = out_arg(json, "json")?;
            give_json(Some(out), &m.inner.pulled_images()?)
        })
    }
}

/// A KubeVirt `VirtualMachine` (kubevirt.io/v1), and a `Service` for its
/// port mappings, as multi-document YAML in `*yaml` (free with
/// `vmc_string_free`), for the container `target` (ID, prefix or name) or,
/// when no container has that name, the image `target` (a file, or a
/// pulled reference). `image_ref` (may be NULL) is the containerDisk the
/// VM boots; without it, the one last pushed with the containerDisk
/// option from the same unchanged image file is used, and if there is
/// none the call fails (`VMC_ERROR_INVALID_INPUT`) saying how to make one.
/// Nothing named `target` → `VMC_ERROR_NOT_FOUND`.
///
/// # Safety
/// `m` is a live manager; `target` a C string; `image_ref` NULL or a C
/// string; `yaml` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_manager_export_kubevirt(
    m: *const vmc_manager_t,
    target: *const c_char,
    image_ref: *const c_char,
    yaml: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let m = obj(m, "manager")?;
            let target = str_arg(target, "target")?;
            let image_ref = opt_str_arg(image_ref, "image_ref")?;
            let out = out_arg(yaml, "yaml")?;
            let text = m.inner.export_kubevirt(target, image_ref)?;
            give_str(Some(out), text.as_bytes())
        })
    }
}
