//! JS inputs to core values. JS has only doubles, so every number is checked
//! here before it narrows; everything else is validated by the core.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vmcontainer::options::{add_port_spec, parse_bind_address};
use vmcontainer::templates::TemplateDirs;
use vmcontainer::{Error, Result};

use crate::types::{OutputCallback, RunOptions, TemplateOptions};

/// A whole number in `0..=max`.
pub fn whole(what: &'static str, v: f64, max: u64) -> Result<u64> {
    if v.is_finite() && v.fract() == 0.0 && v >= 0.0 && v <= max as f64 {
        Ok(v as u64)
    } else {
        Err(Error::invalid(
            what,
            v.to_string(),
            format!("must be a whole number between 0 and {max}"),
        ))
    }
}

/// A duration given in (fractional) seconds, or `default`.
pub fn seconds(v: Option<f64>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(s) => Duration::try_from_secs_f64(s).map_err(|_| {
            Error::invalid(
                "timeout",
                s.to_string(),
                "must be a non-negative number of seconds",
            )
        }),
    }
}

/// Core run options plus the foreground output callback.
pub fn run_options(
    o: Option<RunOptions>,
) -> Result<(vmcontainer::RunOptions, Option<OutputCallback>)> {
    let Some(o) = o else {
        return Ok((vmcontainer::RunOptions::default(), None));
    };
    let mut opts = vmcontainer::RunOptions {
        name: o.name,
        detach: o.detach.unwrap_or(false),
        memory: o
            .memory
            .map(|m| whole("memory", m, u32::MAX.into()))
            .transpose()?
            .map(|m| m as u32),
        cpus: o
            .cpus
            .map(|c| whole("cpus", c, u32::MAX.into()))
            .transpose()?
            .map(|c| c as u32),
        volumes: o
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|(h, g)| (PathBuf::from(h), g))
            .collect(),
        ssh_port: o
            .ssh_port
            .map(|p| whole("ssh port", p, u16::MAX.into()))
            .transpose()?
            .map(|p| p as u16),
        ssh_key: o.ssh_key.map(PathBuf::from),
        bind_address: o
            .bind_address
            .as_deref()
            .map(parse_bind_address)
            .transpose()?,
        ..Default::default()
    };
    // `"8080": 80` or `"0.0.0.0:8080": 80`: the core's `-p` parser reads
    // the key and value as one spec.
    for (host, guest) in o.ports.unwrap_or_default() {
        add_port_spec(&mut opts, &format!("{host}:{guest}"))?;
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
    fn timeouts_are_seconds() {
        assert_eq!(
            seconds(Some(1.5), Duration::ZERO).unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            seconds(None, Duration::from_secs(7)).unwrap(),
            Duration::from_secs(7)
        );
        assert!(seconds(Some(-1.0), Duration::ZERO).is_err());
        assert!(seconds(Some(f64::NAN), Duration::ZERO).is_err());
    }
}
