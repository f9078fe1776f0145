//! LinuxKit templates: the built-ins, `./.core/linuxkit/` and
//! `$VMCONTAINER_HOME/linuxkit/`, and `${VAR}` substitution.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use vmcontainer::templates::{self as core, TemplateDirs};

use crate::blocking::detached;
use crate::options::Pairs;
use crate::repr;

/// A template as listed by `list_templates()`.
#[pyclass(module = "vmcontainer", frozen, eq)]
#[derive(PartialEq)]
pub struct Template {
    /// Lookup name.
    #[pyo3(get)]
    name: String,
    /// First non-empty `#` comment line, else "User-defined template".
    #[pyo3(get)]
    description: String,
    /// File it was found in; `None` for a built-in.
    #[pyo3(get)]
    path: Option<PathBuf>,
    /// Whether it is embedded in the library.
    #[pyo3(get)]
    builtin: bool,
}

#[pymethods]
impl Template {
    fn __repr__(&self, py: Python<'_>) -> String {
        format!(
            "Template(name={}, description={}, builtin={})",
            repr(py, &self.name),
            repr(py, &self.description),
            if self.builtin { "True" } else { "False" }
        )
    }
}

/// Where templates are looked up: the same places as the CLI's, for
/// `home` (default `$VMCONTAINER_HOME`, else `~/.core`) and `cwd` (default
/// the current directory).
fn dirs(home: Option<&Path>, cwd: Option<&Path>) -> vmcontainer::Result<TemplateDirs> {
    TemplateDirs::resolve(home, cwd)
}

/// Built-in templates, then workspace (`cwd/.core/linuxkit/`) and user
/// (`home/linuxkit/`) templates by name.
#[pyfunction]
#[pyo3(signature = (*, home = None, cwd = None))]
pub fn list_templates(
    py: Python<'_>,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
) -> PyResult<Vec<Template>> {
    let list = detached(py, || {
        Ok(core::list_templates(&dirs(
            home.as_deref(),
            cwd.as_deref(),
        )?)?)
    })?;
    Ok(list
        .into_iter()
        .map(|t| Template {
            name: t.name,
            description: t.description,
            path: t.path,
            builtin: t.builtin,
        })
        .collect())
}

/// The raw content of template `name`; `TemplateError` lists the available
/// names when there is none.
#[pyfunction]
#[pyo3(signature = (name, *, home = None, cwd = None))]
pub fn get_template(
    py: Python<'_>,
    name: &str,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
) -> PyResult<String> {
    detached(py, || {
        Ok(core::get_template(&dirs(home.as_deref(), cwd.as_deref())?, name)?.1)
    })
}

/// Template `name` with `vars` substituted (see `apply_variables`).
#[pyfunction]
#[pyo3(signature = (name, vars, *, home = None, cwd = None))]
pub fn apply_template(
    py: Python<'_>,
    name: &str,
    vars: Pairs<String, String>,
    home: Option<PathBuf>,
    cwd: Option<PathBuf>,
) -> PyResult<String> {
    let vars = vars.into_map();
    detached(py, || {
        Ok(core::apply_template(
            &dirs(home.as_deref(), cwd.as_deref())?,
            name,
            &vars,
        )?)
    })
}

/// Replaces `${VAR}` (required) and `${VAR:-default}` (optional) in one
/// pass. Raises `TemplateVariablesError` naming every missing required
/// variable (also in its `names` attribute).
#[pyfunction]
pub fn apply_variables(content: &str, vars: Pairs<String, String>) -> PyResult<String> {
    core::apply_variables(content, &vars.into_map()).map_err(|e| crate::errors::to_py(e.into()))
}

/// `(required, optional)`: the sorted required names, and each optional
/// name with its default.
#[pyfunction]
pub fn extract_variables(content: &str) -> (Vec<String>, BTreeMap<String, String>) {
    core::extract_variables(content)
}
