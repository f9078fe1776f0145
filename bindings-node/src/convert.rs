//! JS inputs to core values. JS has only doubles, so every number is checked
//! before it narrows, by the core's own rules (`vmcontainer::options`), as
//! everything else is. Durations are milliseconds, Node's unit
//! (`setTimeout`, `AbortSignal.timeout`, `child_process`'s `timeout`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use vmcontainer::options;
use vmcontainer::templates::TemplateDirs;
use vmcontainer::{Error, Result};

use crate::types::{OutputCallback, RunOptions, TemplateOptions};

/// A whole number in `0..=max`.
pub fn whole(what: &'static str, v: f64, max: u64) -> Result<u64> {
    options::whole_number(what, v, max)
}

/// A duration given in milliseconds, or `default`.
pub fn millis(what: &'static str, v: Option<f64>, default: Duration) -> Result<Duration> {
    v.map_or(Ok(default), |ms| options::millis(what, ms))
}

/// Core run options plus the foreground output callback. Runs are detached
/// unless `detach: false` (as in every library face); `onOutput` is only
/// for the foreground.
pub fn run_options(
    o: Option<RunOptions>,
) -> Result<(vmcontainer::RunOptions, Option<OutputCallback>)> {
    let Some(o) = o else {
        return Ok((vmcontainer::RunOptions::default(), None));
    };
    let count = |what, v: Option<f64>, max: u64| -> Result<Option<u64>> {
        v.map(|v| whole(what, v, max)).transpose()
    };
    let mut opts = vmcontainer::RunOptions {
        name: o.name,
        detach: o.detach.unwrap_or(vmcontainer::container::DEFAULT_DETACH),
        memory: count("memory", o.memory, u32::MAX.into())?.map(|m| m as u32),
        cpus: count("cpus", o.cpus, u32::MAX.into())?.map(|c| c as u32),
        volumes: o
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|(h, g)| (PathBuf::from(h), g))
            .collect(),
        ssh_port: count("ssh port", o.ssh_port, u16::MAX.into())?.map(|p| p as u16),
        ssh_key: o.ssh_key.map(PathBuf::from),
        bind_address: o
            .bind_address
            .as_deref()
            .map(options::parse_bind_address)
            .transpose()?,
        ..Default::default()
    };
    // Keys are host ports (or `IP:PORT`), values guest ports.
    for (host, guest) in o.ports.unwrap_or_default() {
        options::add_port_entry(&mut opts, &host, guest)?;
    }
    if opts.detach && o.on_output.is_some() {
        return Err(Error::invalid(
            "onOutput",
            "a function",
            "serial output is only streamed in the foreground: pass detach: false",
        ));
    }
    Ok((opts, o.on_output))
}

/// The template directories for `o` (defaults: the environment's root and
/// the working directory).
pub fn template_dirs(o: Option<TemplateOptions>) -> Result<TemplateDirs> {
    let o = o.unwrap_or(TemplateOptions {
        home: None,
        cwd: None,
    });
    TemplateDirs::resolve(
        o.home.as_deref().map(Path::new),
        o.cwd.as_deref().map(Path::new),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn opts() -> RunOptions {
        RunOptions {
            name: None,
            detach: None,
            memory: None,
            cpus: None,
            ports: None,
            volumes: None,
            ssh_port: None,
            ssh_key: None,
            bind_address: None,
            on_output: None,
        }
    }

    fn err(o: RunOptions) -> String {
        run_options(Some(o)).err().expect("accepted").to_string()
    }

    #[test]
    fn numbers_are_checked_before_they_narrow() {
        assert!(err(RunOptions {
            memory: Some(-1.0),
            ..opts()
        })
        .contains("memory"));
        assert!(err(RunOptions {
            cpus: Some(1.5),
            ..opts()
        })
        .contains("cpus"));
        assert!(err(RunOptions {
            ssh_port: Some(70000.0),
            ..opts()
        })
        .contains("70000"));
        let (o, _) = run_options(Some(RunOptions {
            memory: Some(256.0),
            ssh_port: Some(2222.0),
            ..opts()
        }))
        .unwrap();
        assert_eq!((o.memory, o.ssh_port), (Some(256), Some(2222)));
    }

    #[test]
    fn ports_go_through_the_core_parser() {
        let e = err(RunOptions {
            ports: Some(BTreeMap::from([("70000".into(), 80.0)])),
            ..opts()
        });
        assert!(e.contains("70000") && e.contains("out of range"), "{e}");
        assert!(err(RunOptions {
            ports: Some(BTreeMap::from([("8080".into(), 80.5)])),
            ..opts()
        })
        .contains("80.5"));
        let (o, _) = run_options(Some(RunOptions {
            ports: Some(BTreeMap::from([("8080".into(), 80.0)])),
            ..opts()
        }))
        .unwrap();
        assert_eq!(o.ports, vec![(8080, 80)]);
        let (o, _) = run_options(Some(RunOptions {
            ports: Some(BTreeMap::from([
                ("0.0.0.0:8443".into(), 443.0),
                ("8080".into(), 80.0),
            ])),
            ..opts()
        }))
        .unwrap();
        assert_eq!(o.bind_addresses.len(), 1);
        assert_eq!(o.bind_addresses[&8443].to_string(), "0.0.0.0");
    }

    #[test]
    fn timeouts_are_milliseconds() {
        assert_eq!(
            millis("t", Some(1500.0), Duration::ZERO).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            millis("t", None, Duration::from_secs(7)).unwrap(),
            Duration::from_secs(7)
        );
        assert!(millis("timeout", Some(-1.0), Duration::ZERO)
            .unwrap_err()
            .to_string()
            .contains("timeout"));
        assert!(millis("t", Some(f64::NAN), Duration::ZERO).is_err());
    }

    #[test]
    fn runs_are_detached_by_default() {
        let (o, _) = run_options(Some(opts())).unwrap();
        assert!(o.detach);
        assert!(run_options(None).unwrap().0.detach);
    }
}
