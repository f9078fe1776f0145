//! Python values → `RunOptions`. Range checks here only cover what the
//! core's types cannot hold (a Python int is unbounded); every other rule
//! is the core's (`vmcontainer::options`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use vmcontainer::options;
use vmcontainer::RunOptions;

use crate::errors::to_py;

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

/// A count from Python (an unbounded int) for the core, checked by the
/// core's rule.
pub(crate) fn count(
    what: &'static str,
    v: Option<i64>,
    max: u32,
) -> vmcontainer::Result<Option<u32>> {
    v.map(|n| options::whole_number(what, n as f64, max.into()).map(|n| n as u32))
        .transpose()
}

impl RunArgs {
    /// Converts to the core's options; every rule is the core's.
    pub fn into_options(self) -> PyResult<RunOptions> {
        self.convert().map_err(to_py)
    }

    fn convert(self) -> vmcontainer::Result<RunOptions> {
        let mut opts = RunOptions {
            name: self.name,
            detach: self.detach,
            memory: count("memory", self.memory, u32::MAX)?,
            cpus: count("cpus", self.cpus, u32::MAX)?,
            volumes: self.volumes.map(|v| v.0).unwrap_or_default(),
            // 0 means "pick one", as in the core.
            ssh_port: count("ssh port", self.ssh_port, u16::MAX.into())?.map(|p| p as u16),
            ssh_key: self.ssh_key,
            bind_address: self
                .bind_address
                .as_deref()
                .map(options::parse_bind_address)
                .transpose()?,
            ..Default::default()
        };
        // A key may name its own listen address (`"0.0.0.0:8080"`), read by
        // the core's `-p` parser so messages match the CLI's.
        for (key, guest) in self.ports.map(|p| p.0).unwrap_or_default() {
            match key {
                PortKey::Port(host) => options::add_port(&mut opts, host as f64, guest as f64)?,
                PortKey::Spec(host) => options::add_port_entry(&mut opts, &host, guest as f64)?,
            }
        }
        Ok(opts)
    }
}
