//! Project detection for the dev environment: what `serve` and `test` run
//! when no command is given, `.core/test.yaml`, and the dev image's name.
//! None of these needs a VM.

use std::ffi::c_char;
use std::path::Path;

use vmcontainer::devenv as core;

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{guard, malloc_bytes, out_arg, str_arg};

/// The command `serve` runs for the project in `dir` when none is given
/// (artisan → Octane; package.json `dev`/`start`; composer.json →
/// FrankenPHP; go.mod with main.go → `go run .`; manage.py → Django; else
/// `python3 -m http.server 8000`). Free `*out` with `vmc_string_free`.
///
/// # Safety
/// `dir` is a C string; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_detect_serve_command(
    dir: *const c_char,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let dir = str_arg(dir, "dir")?;
            let out = out_arg(out, "out")?;
            out.set(malloc_bytes(
                core::detect_serve_command(Path::new(dir)).as_bytes(),
            )?);
            Ok(())
        })
    }
}

/// The command `test` runs for the project in `dir` when none is given
/// (`.core/test.yaml` command; composer/npm `test` scripts; go.mod →
/// `go test ./...`; pytest; Taskfile), or NULL in `*out` when there is
/// none. Free `*out` with `vmc_string_free`.
///
/// # Safety
/// As for `vmc_detect_serve_command`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_detect_test_command(
    dir: *const c_char,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let dir = str_arg(dir, "dir")?;
            let out = out_arg(out, "out")?;
            if let Some(c) = core::detect_test_command(Path::new(dir)) {
                out.set(malloc_bytes(c.as_bytes())?);
            }
            Ok(())
        })
    }
}

/// `dir/.core/test.yaml` as a JSON object (`version`, `command`,
/// `commands`: `[{"name", "run"}]`, `env`), or NULL in `*json` when there
/// is no such file; an invalid file → `VMC_ERROR_INVALID_INPUT` naming the
/// file and line. Free `*json` with `vmc_string_free`.
///
/// # Safety
/// `dir` is a C string; `json` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_load_test_config(
    dir: *const c_char,
    json: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let dir = str_arg(dir, "dir")?;
            let out = out_arg(json, "json")?;
            if let Some(c) = core::load_test_config(Path::new(dir))? {
                let text = serde_json::to_string(&c)
                    .map_err(|e| Failure::internal(format!("serializing test config: {e}")))?;
                out.set(malloc_bytes(text.as_bytes())?);
            }
            Ok(())
        })
    }
}

/// The dev image's file name on this host, `core-devops-{os}-{arch}.qcow2`.
/// Free `*out` with `vmc_string_free`.
///
/// # Safety
/// `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_image_name(
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let out = out_arg(out, "out")?;
            out.set(malloc_bytes(core::image_name().as_bytes())?);
            Ok(())
        })
    }
}
