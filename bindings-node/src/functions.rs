//! Module-level functions: hypervisors, image formats, IDs and templates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use napi::bindgen_prelude::PromiseRaw;
use napi::Env;
use napi_derive::napi;
use vmcontainer::templates;

use crate::convert::template_dirs;
use crate::error::sync;
use crate::promise::{blocking, spawn};
use crate::types::{
    HypervisorName, ImageFormat, TemplateContent, TemplateInfo, TemplateOptions, TemplateVariables,
};

/// The best hypervisor on this host (Hyperkit on macOS when installed, else
/// QEMU). Synchronous: it only looks at `PATH`.
#[napi]
pub fn detect_hypervisor(env: &Env) -> napi::Result<HypervisorName> {
    let h = sync(env, vmcontainer::detect_hypervisor())?;
    Ok(HypervisorName::of(h.as_ref()))
}

/// Checks that the hypervisor `name` (`qemu` or `hyperkit`, any case) is
/// usable here and returns its canonical name. Synchronous: it only looks
/// at `PATH`.
#[napi]
pub fn get_hypervisor(env: &Env, name: String) -> napi::Result<HypervisorName> {
    let h = sync(env, vmcontainer::get_hypervisor(&name))?;
    Ok(HypervisorName::of(h.as_ref()))
}

/// The format of the image at `path`, by content when the extension is
/// missing or lies.
#[napi]
pub fn detect_image_format<'env>(
    env: &'env Env,
    path: String,
) -> napi::Result<PromiseRaw<'env, ImageFormat>> {
    spawn(
        env,
        blocking(move || Ok(vmcontainer::detect_image_format(&PathBuf::from(path)))),
        ImageFormat::from,
    )
}

/// A new container ID: 8 lowercase hex characters from a CSPRNG.
#[napi]
pub fn generate_id() -> String {
    vmcontainer::generate_id()
}

/// Built-in templates, then workspace and user templates.
#[napi]
pub fn list_templates<'env>(
    env: &'env Env,
    options: Option<TemplateOptions>,
) -> napi::Result<PromiseRaw<'env, Vec<TemplateInfo>>> {
    let fut = blocking(move || Ok(templates::list_templates(&template_dirs(options)?)?));
    spawn(env, fut, |v| {
        v.into_iter().map(TemplateInfo::from).collect()
    })
}

/// The template `name` with its raw content.
#[napi]
pub fn get_template<'env>(
    env: &'env Env,
    name: String,
    options: Option<TemplateOptions>,
) -> napi::Result<PromiseRaw<'env, TemplateContent>> {
    let fut = blocking(move || Ok(templates::get_template(&template_dirs(options)?, &name)?));
    spawn(env, fut, TemplateContent::from)
}

/// The template `name` with `vars` substituted.
#[napi]
pub fn apply_template<'env>(
    env: &'env Env,
    name: String,
    vars: BTreeMap<String, String>,
    options: Option<TemplateOptions>,
) -> napi::Result<PromiseRaw<'env, String>> {
    let fut = blocking(move || {
        Ok(templates::apply_template(
            &template_dirs(options)?,
            &name,
            &vars,
        )?)
    });
    spawn(env, fut, |s| s)
}

/// Substitutes `${VAR}` (required) and `${VAR:-default}` in one pass; all
/// missing required names are reported in one error.
#[napi]
pub fn apply_variables(
    env: &Env,
    content: String,
    vars: BTreeMap<String, String>,
) -> napi::Result<String> {
    sync(
        env,
        templates::apply_variables(&content, &vars).map_err(Into::into),
    )
}

/// The variables `content` uses: sorted required names, and optional names
/// with their defaults.
#[napi]
pub fn extract_variables(content: String) -> TemplateVariables {
    let (required, optional) = templates::extract_variables(&content);
    TemplateVariables { required, optional }
}

/// Whether the hypervisor `name` (default: the detected one) can run here.
/// Synchronous: it only looks at `PATH` and the host.
#[napi]
pub fn hypervisor_available(name: Option<String>) -> bool {
    let h = match name {
        Some(n) => vmcontainer::get_hypervisor(&n),
        None => vmcontainer::detect_hypervisor(),
    };
    h.is_ok_and(|h| h.available())
}

/// The accelerator VMs started now would use.
#[napi(object, object_from_js = false)]
pub struct AccelInfo {
    /// `kvm`, `hvf` or `tcg`.
    pub accel: String,
    /// Why it was chosen.
    pub reason: String,
}

/// The accelerator VMs started now would use with hypervisor `name`
/// (default: the detected one), and why. The first call may probe the host
/// for a few seconds (off the event loop).
#[napi]
pub fn hypervisor_accel<'env>(
    env: &'env Env,
    name: Option<String>,
) -> napi::Result<PromiseRaw<'env, AccelInfo>> {
    let fut = blocking(move || {
        let h = match name {
            Some(n) => vmcontainer::get_hypervisor(&n)?,
            None => vmcontainer::detect_hypervisor()?,
        };
        h.accel()
    });
    spawn(env, fut, |c| AccelInfo {
        accel: c.accel.as_str().to_string(),
        reason: c.reason,
    })
}

/// The version of the native module ("MAJOR.MINOR.PATCH").
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// The core's error kinds (`not_found`, ...), in order: each error's
/// `code` is `ERR_VMC_` and the kind in upper case.
#[napi]
pub fn error_kinds() -> Vec<String> {
    vmcontainer::ErrorKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect()
}
