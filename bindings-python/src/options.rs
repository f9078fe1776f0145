//! Python values → `RunOptions`. Range checks here only cover what the
//! core's types cannot hold (a Python int is unbounded); every other rule
//! is the core's (`vmcontainer::options`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use vmcontainer::options::{add_port_spec, parse_bind_address};
use vmcontainer::RunOptions;

use crate::errors::{invalid, to_py};

/// The items of any Python mapping (`dict`, `os.environ`, ...), in its
/// iteration order.
pub(crate) struct Pairs<K, V>(pub Vec<(K, V)>);

impl<'py, K, V> FromPyObject<'_, 'py> for Pairs<K, V>
where
    K: FromPyObjectOwned<'py>,
    V: FromPyObjectOwned<'py>,
{
    type Error = PyErr;

    fn extract(ob: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let items = ob.call_method0("items").map_err(|_| {
            PyTypeError::new_err(format!(
                "expected a mapping, got {}",
                ob.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        let mut out = Vec::new();
        for item in items.try_iter()? {
            let item = item?;
            out.push((
                item.get_item(0)?.extract().map_err(Into::into)?,
                item.get_item(1)?.extract().map_err(Into::into)?,
            ));
        }
        Ok(Pairs(out))
    }
}

impl<K: Ord, V> Pairs<K, V> {
    /// As a sorted map (later duplicates win).
    pub fn into_map(self) -> BTreeMap<K, V> {
        self.0.into_iter().collect()
    }
}

/// A key of `ports`: a host port, or `"IP:HOST"` naming the mapping's own
/// listen address.
#[derive(FromPyObject)]
pub(crate) enum PortKey {
    Port(i64),
    Spec(String),
}

/// The keyword arguments of `Manager.run`, as Python gave them.
pub(crate) struct RunArgs {
    pub name: Option<String>,
    pub detach: bool,
    pub memory: Option<i64>,
    pub cpus: Option<i64>,
    pub ports: Option<Pairs<PortKey, i64>>,
    pub volumes: Option<Pairs<PathBuf, String>>,
    pub ssh_port: Option<i64>,
    pub ssh_key: Option<PathBuf>,
    pub bind_address: Option<String>,
}

fn u32_arg(what: &'static str, v: Option<i64>) -> PyResult<Option<u32>> {
    v.map(|n| u32::try_from(n).map_err(|_| invalid(what, n, "out of range")))
        .transpose()
}

impl RunArgs {
    /// Converts to the core's options.
    pub fn into_options(self) -> PyResult<RunOptions> {
        let ssh_port = self
            .ssh_port
            // 0 means "pick one", as in the core.
            .map(|p| {
                u16::try_from(p)
                    .map_err(|_| invalid("ssh port", p, "ports must be between 1 and 65535"))
            })
            .transpose()?;
        let bind_address = self
            .bind_address
            .as_deref()
            .map(parse_bind_address)
            .transpose()
            .map_err(to_py)?;
        let mut opts = RunOptions {
            name: self.name,
            detach: self.detach,
            memory: u32_arg("memory", self.memory)?,
            cpus: u32_arg("cpus", self.cpus)?,
            volumes: self.volumes.map(|v| v.0).unwrap_or_default(),
            ssh_port,
            ssh_key: self.ssh_key,
            bind_address,
            ..Default::default()
        };
        // The core's own `-p` parser reads each pair, so messages match
        // the CLI's and a key may name its listen address.
        for (key, guest) in self.ports.map(|p| p.0).unwrap_or_default() {
            let host = match key {
                PortKey::Port(p) => p.to_string(),
                PortKey::Spec(s) => s,
            };
            add_port_spec(&mut opts, &format!("{host}:{guest}")).map_err(to_py)?;
        }
        Ok(opts)
    }
}
