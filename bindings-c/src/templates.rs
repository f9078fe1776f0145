//! LinuxKit templates: listing, reading, applying, and `${VAR}` variables.
//!
//! Lookup order is the core's: built-in templates, then the workspace's
//! `./.core/linuxkit/` (the process's working directory), then the user's
//! `HOME/linuxkit/`. Every function that looks templates up takes `home`:
//! NULL means `$VMCONTAINER_HOME`, else `~/.core`.

use std::collections::BTreeMap;
use std::ffi::{c_char, CString};
use std::path::Path;
use std::ptr;

use vmcontainer::templates::{self, TemplateDirs};

use crate::error::{vmc_error_code_t, vmc_error_t};
use crate::ffi::{
    self, guard, guard_value, into_handle, malloc_bytes, opt_str_arg, out_arg, str_arg,
    str_array_arg, to_cstring, FfiResult,
};

/// Where templates are looked up for `home`.
fn dirs(home: Option<&str>) -> FfiResult<TemplateDirs> {
    Ok(TemplateDirs::resolve(home.map(Path::new), None)?)
}

/// `count` name/value pairs from two parallel arrays.
///
/// # Safety
/// `names` and `values` are NULL or point to `count` C strings each.
unsafe fn vars(
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
) -> FfiResult<BTreeMap<String, String>> {
    // SAFETY: forwarded caller guarantees.
    let (names, values) = unsafe {
        (
            str_array_arg(names, count, "names")?,
            str_array_arg(values, count, "values")?,
        )
    };
    Ok(names
        .into_iter()
        .zip(values)
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect())
}

/// One entry of a template listing; borrowed from its list.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_template_t {
    name: CString,
    description: CString,
    path: Option<CString>,
    builtin: bool,
}

/// The templates `vmc_list_templates` found. Release with
/// `vmc_template_list_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_template_list_t {
    items: Vec<vmc_template_t>,
}

/// Lists the available templates: built-ins first, then workspace and user
/// templates by name. Free `*out` with `vmc_template_list_free`.
///
/// # Safety
/// `home` is NULL or a C string; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_list_templates(
    home: *const c_char,
    out: *mut *mut vmc_template_list_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let dirs = dirs(opt_str_arg(home, "home")?)?;
            let out = out_arg(out, "out")?;
            let items = templates::list_templates(&dirs)?
                .into_iter()
                .map(|t| vmc_template_t {
                    name: to_cstring(t.name),
                    description: to_cstring(t.description),
                    path: t
                        .path
                        .map(|p| to_cstring(p.into_os_string().into_encoded_bytes())),
                    builtin: t.builtin,
                })
                .collect();
            out.set(into_handle(vmc_template_list_t { items }));
            Ok(())
        })
    }
}

/// Number of templates in `list` (0 for NULL).
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_list_len(list: *const vmc_template_list_t) -> usize {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { list.as_ref() }.map(|l| l.items.len()))
}

/// Template `index` of `list`, borrowed until the list is freed; NULL when
/// out of range or for NULL.
///
/// # Safety
/// `list` is NULL or a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_list_get(
    list: *const vmc_template_list_t,
    index: usize,
) -> *const vmc_template_t {
    guard_value(ptr::null(), || {
        // SAFETY: forwarded caller guarantee.
        let l = unsafe { list.as_ref() }?;
        l.items.get(index).map(|t| t as *const _)
    })
}

/// Releases a template list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or from `vmc_list_templates`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_list_free(list: *mut vmc_template_list_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(list) }
}

/// Reads a field of a possibly-NULL template.
fn field<T>(t: *const vmc_template_t, fallback: T, f: impl FnOnce(&vmc_template_t) -> T) -> T {
    // SAFETY: every accessor's contract: NULL or a live entry.
    guard_value(fallback, || unsafe { t.as_ref() }.map(f))
}

/// The template's name. NULL for NULL.
///
/// # Safety
/// `t` is NULL or an entry of a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_name(t: *const vmc_template_t) -> *const c_char {
    field(t, ptr::null(), |t| t.name.as_ptr())
}

/// Its description: the first non-empty `#` comment line, else
/// `"User-defined template"`. NULL for NULL.
///
/// # Safety
/// `t` is NULL or an entry of a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_description(t: *const vmc_template_t) -> *const c_char {
    field(t, ptr::null(), |t| t.description.as_ptr())
}

/// Its file; NULL for a built-in template (and for NULL).
///
/// # Safety
/// `t` is NULL or an entry of a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_path(t: *const vmc_template_t) -> *const c_char {
    field(t, ptr::null(), |t| {
        t.path.as_ref().map_or(ptr::null(), |p| p.as_ptr())
    })
}

/// Whether it is built into the library (false for NULL).
///
/// # Safety
/// `t` is NULL or an entry of a live list.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_is_builtin(t: *const vmc_template_t) -> bool {
    field(t, false, |t| t.builtin)
}

/// The LinuxKit YAML of template `name`, variables not substituted.
/// Unknown → `VMC_ERROR_TEMPLATE` naming the available ones. Free
/// `*content` with `vmc_string_free`.
///
/// # Safety
/// `home` is NULL or a C string; `name` a C string; `content` writable;
/// `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_get_template(
    home: *const c_char,
    name: *const c_char,
    content: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let dirs = dirs(opt_str_arg(home, "home")?)?;
            let name = str_arg(name, "name")?;
            let out = out_arg(content, "content")?;
            let (_, text) = templates::get_template(&dirs, name)?;
            out.set(malloc_bytes(text.as_bytes())?);
            Ok(())
        })
    }
}

/// Template `name` with its variables substituted from `count` pairs
/// `names[i]`=`values[i]` (see `vmc_apply_variables`). Free `*out` with
/// `vmc_string_free`.
///
/// # Safety
/// `home` is NULL or a C string; `name` a C string; `names` and `values`
/// point to `count` C strings each (may be NULL when `count` is 0); `out`
/// writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_apply_template(
    home: *const c_char,
    name: *const c_char,
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let dirs = dirs(opt_str_arg(home, "home")?)?;
            let name = str_arg(name, "name")?;
            let vars = vars(names, values, count)?;
            let out = out_arg(out, "out")?;
            let text = templates::apply_template(&dirs, name, &vars)?;
            out.set(malloc_bytes(text.as_bytes())?);
            Ok(())
        })
    }
}

/// Substitutes `${VAR}` (required) and `${VAR:-default}` (optional) in
/// `content` in one pass (a substituted value is never expanded again),
/// from `count` pairs `names[i]`=`values[i]`. Missing required variables →
/// `VMC_ERROR_TEMPLATE_VARIABLES`, all named in one message ("missing
/// required variables: A, B"). Free `*out` with `vmc_string_free`.
///
/// # Safety
/// `content` is a C string; `names` and `values` point to `count` C
/// strings each (may be NULL when `count` is 0); `out` writable; `err` NULL
/// or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_apply_variables(
    content: *const c_char,
    names: *const *const c_char,
    values: *const *const c_char,
    count: usize,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let content = str_arg(content, "content")?;
            let vars = vars(names, values, count)?;
            let out = out_arg(out, "out")?;
            let text = templates::apply_variables(content, &vars)?;
            out.set(malloc_bytes(text.as_bytes())?);
            Ok(())
        })
    }
}

/// The variables a template uses (`vmc_extract_variables`). Release with
/// `vmc_template_variables_free`.
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct vmc_template_variables_t {
    required: Vec<CString>,
    optional: Vec<(CString, CString)>,
}

/// Finds the variables in `content`: required names (sorted) and optional
/// names with their defaults (sorted by name). Free `*out` with
/// `vmc_template_variables_free`.
///
/// # Safety
/// `content` is a C string; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_extract_variables(
    content: *const c_char,
    out: *mut *mut vmc_template_variables_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let content = str_arg(content, "content")?;
            let out = out_arg(out, "out")?;
            let (required, optional) = templates::extract_variables(content);
            out.set(into_handle(vmc_template_variables_t {
                required: required.into_iter().map(to_cstring).collect(),
                optional: optional
                    .into_iter()
                    .map(|(k, v)| (to_cstring(k), to_cstring(v)))
                    .collect(),
            }));
            Ok(())
        })
    }
}

/// Number of required variables (0 for NULL).
///
/// # Safety
/// `v` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_variables_required_len(
    v: *const vmc_template_variables_t,
) -> usize {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { v.as_ref() }.map(|v| v.required.len()))
}

/// Required variable `index`, borrowed until `v` is freed; NULL when out
/// of range or for NULL.
///
/// # Safety
/// `v` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_variables_required_get(
    v: *const vmc_template_variables_t,
    index: usize,
) -> *const c_char {
    guard_value(ptr::null(), || {
        // SAFETY: forwarded caller guarantee.
        let v = unsafe { v.as_ref() }?;
        v.required.get(index).map(|s| s.as_ptr())
    })
}

/// Number of optional variables (0 for NULL).
///
/// # Safety
/// `v` is NULL or live.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_variables_optional_len(
    v: *const vmc_template_variables_t,
) -> usize {
    // SAFETY: forwarded caller guarantee.
    guard_value(0, || unsafe { v.as_ref() }.map(|v| v.optional.len()))
}

/// Optional variable `index`: stores its name and default (possibly "")
/// in `*name` and `*default_value`, borrowed until `v` is freed, and
/// returns true; false when out of range or an argument is NULL.
///
/// # Safety
/// `v` is NULL or live; `name` and `default_value` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_variables_optional_get(
    v: *const vmc_template_variables_t,
    index: usize,
    name: *mut *const c_char,
    default_value: *mut *const c_char,
) -> bool {
    guard_value(false, || {
        // SAFETY: forwarded caller guarantee.
        let (n, d) = unsafe { v.as_ref() }?.optional.get(index)?;
        if name.is_null() || default_value.is_null() {
            return None;
        }
        // SAFETY: checked non-NULL; the caller guarantees they are writable.
        unsafe {
            name.write(n.as_ptr());
            default_value.write(d.as_ptr());
        }
        Some(true)
    })
}

/// Releases variables. NULL is ignored.
///
/// # Safety
/// `v` is NULL or from `vmc_extract_variables`, freed only once.
#[no_mangle]
pub unsafe extern "C" fn vmc_template_variables_free(v: *mut vmc_template_variables_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(v) }
}
