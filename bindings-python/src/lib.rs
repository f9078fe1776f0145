//! `vmcontainer._native`: the compiled half of the Python module. Every
//! behaviour lives in the `vmcontainer` crate; this crate converts values
//! and maps errors, nothing more. The pure-Python package
//! `python/vmcontainer/` re-exports it and defines the exception classes.

use pyo3::prelude::*;

mod blocking;
mod container;
#[cfg(feature = "devenv")]
mod devenv;
mod errors;
mod hypervisor;
mod logs;
mod manager;
mod options;
mod process;
#[cfg(any(feature = "devenv", feature = "registry"))]
mod progress;
#[cfg(feature = "registry")]
mod registry;
mod snapshot;
mod templates;

/// `s` as Python's `repr()` shows it, for the classes' `__repr__`.
pub(crate) fn repr(py: Python<'_>, s: &str) -> String {
    pyo3::types::PyString::new(py, s)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| format!("{s:?}"))
}

/// The native module, imported as `vmcontainer._native`.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<manager::Manager>()?;
    m.add_class::<container::Container>()?;
    m.add_class::<container::ExecResult>()?;
    m.add_class::<snapshot::Snapshot>()?;
    #[cfg(feature = "registry")]
    {
        m.add_class::<registry::PushReport>()?;
        m.add_class::<registry::PulledImage>()?;
    }
    m.add_class::<process::Process>()?;
    m.add_class::<process::ProcessInput>()?;
    m.add_class::<process::ProcessOutput>()?;
    m.add_class::<logs::LogStream>()?;
    m.add_class::<hypervisor::Hypervisor>()?;
    m.add_class::<templates::Template>()?;
    m.add_function(wrap_pyfunction!(hypervisor::detect_hypervisor, m)?)?;
    m.add_function(wrap_pyfunction!(hypervisor::get_hypervisor, m)?)?;
    m.add_function(wrap_pyfunction!(hypervisor::detect_image_format, m)?)?;
    m.add_function(wrap_pyfunction!(hypervisor::generate_id, m)?)?;
    m.add_function(wrap_pyfunction!(templates::list_templates, m)?)?;
    m.add_function(wrap_pyfunction!(templates::get_template, m)?)?;
    m.add_function(wrap_pyfunction!(templates::apply_template, m)?)?;
    m.add_function(wrap_pyfunction!(templates::apply_variables, m)?)?;
    m.add_function(wrap_pyfunction!(templates::extract_variables, m)?)?;
    #[cfg(feature = "devenv")]
    {
        m.add_class::<devenv::DevOps>()?;
        m.add_class::<devenv::InstallReport>()?;
        m.add_class::<devenv::UpdateInfo>()?;
        m.add_class::<devenv::DevStatus>()?;
        m.add_class::<devenv::TestConfig>()?;
        m.add_function(wrap_pyfunction!(devenv::detect_serve_command, m)?)?;
        m.add_function(wrap_pyfunction!(devenv::detect_test_command, m)?)?;
        m.add_function(wrap_pyfunction!(devenv::load_test_config, m)?)?;
        m.add_function(wrap_pyfunction!(devenv::image_name, m)?)?;
    }
    m.add_function(wrap_pyfunction!(errors::error_kinds, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// See the `mimalloc` line of the workspace Cargo.toml.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
