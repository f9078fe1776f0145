//! Checking `RunOptions` before anything is started, and parsing the
//! `HOST:GUEST` forms that every front end accepts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::container::{is_valid_name, RunOptions, DEFAULT_CPUS, DEFAULT_MEMORY_MB};
use crate::error::{Error, Result};
use crate::home::absolute;

/// `RunOptions` after validation, with defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Container name, if given.
    pub name: Option<String>,
    /// Memory in MB.
    pub memory: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Host port → guest port.
    pub ports: BTreeMap<u16, u16>,
    /// Absolute host directory → guest path.
    pub volumes: BTreeMap<String, String>,
    /// Fixed SSH host port, or `None` to pick one.
    pub ssh_port: Option<u16>,
    /// Absolute path of the private key.
    pub ssh_key: Option<PathBuf>,
    /// Listen address of each forwarded port that does not listen on
    /// 127.0.0.1, by host port (what the record keeps).
    pub binds: BTreeMap<u16, IpAddr>,
}

/// The 9p mount tag for a guest path: its base name, as go-container used.
pub fn mount_tag(guest: &str) -> Option<String> {
    Path::new(guest)
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// Validates `opts`, touching nothing.
pub fn validate(opts: &RunOptions) -> Result<RunConfig> {
    if let Some(n) = &opts.name {
        if !is_valid_name(n) {
            return Err(Error::invalid(
                "name",
                n,
                "use 1-64 characters [A-Za-z0-9_.-], starting with a letter or digit",
            ));
        }
    }
    let memory = opts.memory.unwrap_or(DEFAULT_MEMORY_MB);
    if memory == 0 {
        return Err(Error::invalid(
            "memory",
            "0",
            "memory must be at least 1 MB",
        ));
    }
    let cpus = opts.cpus.unwrap_or(DEFAULT_CPUS);
    if cpus == 0 || cpus > 255 {
        return Err(Error::invalid(
            "cpus",
            cpus.to_string(),
            "must be between 1 and 255",
        ));
    }
    let ssh_port = opts.ssh_port.filter(|p| *p != 0);
    let mut ports = BTreeMap::new();
    for &(host, guest) in &opts.ports {
        let shown = format!("{host}:{guest}");
        if host == 0 || guest == 0 {
            return Err(Error::invalid(
                "port mapping",
                shown,
                "ports must be between 1 and 65535",
            ));
        }
        if Some(host) == ssh_port {
            return Err(Error::invalid(
                "port mapping",
                shown,
                format!("host port {host} is already the SSH port"),
            ));
        }
        if ports.insert(host, guest).is_some() {
            return Err(Error::invalid(
                "port mapping",
                shown,
                format!("host port {host} is mapped twice"),
            ));
        }
    }
    let mut volumes = BTreeMap::new();
    let mut tags = BTreeSet::new();
    for (host, guest) in &opts.volumes {
        let shown = format!("{}:{guest}", host.display());
        let meta = std::fs::metadata(host).map_err(|e| {
            Error::invalid(
                "volume",
                shown.clone(),
                format!("host path {}: {e}", host.display()),
            )
        })?;
        if !meta.is_dir() {
            return Err(Error::invalid(
                "volume",
                shown,
                "host path is not a directory",
            ));
        }
        if !guest.starts_with('/') {
            return Err(Error::invalid(
                "volume",
                shown,
                "guest path must be absolute",
            ));
        }
        let tag = mount_tag(guest).ok_or_else(|| {
            Error::invalid(
                "volume",
                shown.clone(),
                "guest path needs a final component (it names the 9p tag)",
            )
        })?;
        if !tags.insert(tag.clone()) {
            return Err(Error::invalid("volume", shown, format!("another volume already uses the 9p tag {tag:?} (guest paths must have distinct base names)")));
        }
        let host = std::fs::canonicalize(host)
            .map_err(|e| Error::invalid("volume", shown.clone(), e.to_string()))?;
        let host = host
            .to_str()
            .ok_or_else(|| Error::invalid("volume", shown.clone(), "host path is not valid UTF-8"))?
            .to_string();
        volumes.insert(host, guest.clone());
    }
    let ssh_key = opts.ssh_key.as_deref().map(check_ssh_key).transpose()?;
    let binds = listen_addresses(opts, &ports)?;
    Ok(RunConfig {
        name: opts.name.clone(),
        memory,
        cpus,
        ports,
        volumes,
        ssh_port,
        ssh_key,
        binds,
    })
}

/// The listen address of every mapping that does not listen on 127.0.0.1:
/// its own (`bind_addresses`), else the options' `bind_address`.
fn listen_addresses(
    opts: &RunOptions,
    ports: &BTreeMap<u16, u16>,
) -> Result<BTreeMap<u16, IpAddr>> {
    for host in opts.bind_addresses.keys() {
        if !ports.contains_key(host) {
            return Err(Error::invalid(
                "listen address",
                format!("{}:{host}", opts.bind_addresses[host]),
                format!("host port {host} is not forwarded"),
            ));
        }
    }
    let mut out = BTreeMap::new();
    for host in ports.keys() {
        let addr = opts
            .bind_addresses
            .get(host)
            .copied()
            .or(opts.bind_address)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        if addr.is_ipv6() {
            return Err(Error::invalid(
                "listen address",
                addr.to_string(),
                "QEMU's user network forwards IPv4 addresses only",
            ));
        }
        if addr != IpAddr::V4(Ipv4Addr::LOCALHOST) {
            out.insert(*host, addr);
        }
    }
    Ok(out)
}

/// Checks the private key `exec` will use, so that a bad one fails `run`
/// rather than the first `exec`: it must be a regular file (a directory or
/// a FIFO is named as such). A key that others may read, which ssh would
/// ignore, is accepted: `run` gives the container a private copy (see
/// [`private_key_copy`]).
pub fn check_ssh_key(key: &Path) -> Result<PathBuf> {
    let shown = || key.display().to_string();
    crate::regular_file::check(key).map_err(|e| match e {
        crate::regular_file::OpenError::Missing(_) => {
            Error::invalid("ssh key", shown(), "no such file")
        }
        other => Error::invalid("ssh key", shown(), other.describe()),
    })?;
    Ok(absolute(key))
}

/// Whether ssh would refuse `key` for its permissions: OpenSSH ignores a
/// private key of ours that group or others can read (a key checked out of
/// a repository is 0644).
pub fn ssh_key_too_open(key: &Path) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    crate::regular_file::check(key).is_ok_and(|md| {
        md.uid() == nix::unistd::getuid().as_raw() && md.permissions().mode() & 0o077 != 0
    })
}

/// Copies `key` to `dir/ssh_key` readable only by us, when ssh would refuse
/// it as it is (see [`ssh_key_too_open`]), and returns the copy's path;
/// `None` when the key can be used in place.
pub fn private_key_copy(key: &Path, dir: &Path) -> Result<Option<PathBuf>> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if !ssh_key_too_open(key) {
        return Ok(None);
    }
    let bytes = crate::regular_file::read(key, 1 << 20)
        .map_err(|e| Error::invalid("ssh key", key.display().to_string(), e.describe()))?;
    let copy = dir.join("ssh_key");
    let _ = std::fs::remove_file(&copy);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&copy)
        .map_err(|e| Error::io("create", &copy, e))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("write", &copy, e))?;
    Ok(Some(copy))
}

/// Parses a listen address (`127.0.0.1`, `0.0.0.0`, `[::1]`) as every front
/// end accepts it.
pub fn parse_bind_address(text: &str) -> Result<IpAddr> {
    let trimmed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    trimmed
        .parse()
        .map_err(|_| Error::invalid("bind address", text, "not an IP address"))
}

/// A parsed `-p` value: `[IP:]HOST:GUEST`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortSpec {
    /// Listen address, when given.
    pub bind: Option<IpAddr>,
    /// Host port.
    pub host: u16,
    /// Guest port.
    pub guest: u16,
}

fn port_number(spec: &str, s: &str) -> Result<u16> {
    match s.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        Ok(_) => Err(Error::invalid(
            "port mapping",
            spec,
            format!("port {s} is out of range 1-65535"),
        )),
        Err(_) => Err(Error::invalid(
            "port mapping",
            spec,
            format!("{:?} is not a port number", crate::error::shown(s)),
        )),
    }
}

/// Parses `HOST:GUEST` or `IP:HOST:GUEST` (an IPv6 address in brackets,
/// `[::1]:8080:80`).
pub fn parse_port_spec(spec: &str) -> Result<PortSpec> {
    const FORM: &str = "expected HOST:GUEST or IP:HOST:GUEST";
    let (ip, ports) = if let Some(rest) = spec.strip_prefix('[') {
        let (ip, rest) = rest.split_once(']').ok_or_else(|| {
            Error::invalid("port mapping", spec, "an IPv6 address needs a closing ']'")
        })?;
        let ports = rest.strip_prefix(':').ok_or_else(|| {
            Error::invalid("port mapping", spec, format!("{FORM} after the address"))
        })?;
        (Some(ip), ports)
    } else {
        match spec.matches(':').count() {
            1 => (None, spec),
            2 => {
                let (ip, ports) = spec.split_once(':').expect("two colons");
                (Some(ip), ports)
            }
            0 => return Err(Error::invalid("port mapping", spec, FORM)),
            n => {
                return Err(Error::invalid(
                    "port mapping",
                    spec,
                    format!(
                        "{FORM} ({} fields; write an IPv6 address in brackets)",
                        n + 1
                    ),
                ))
            }
        }
    };
    let (host, guest) = ports
        .split_once(':')
        .filter(|(_, g)| !g.contains(':'))
        .ok_or_else(|| Error::invalid("port mapping", spec, FORM))?;
    let bind = match ip {
        None => None,
        Some(ip) => Some(ip.parse::<IpAddr>().map_err(|_| {
            Error::invalid(
                "port mapping",
                spec,
                format!("{:?} is not an IP address", crate::error::shown(ip)),
            )
        })?),
    };
    Ok(PortSpec {
        bind,
        host: port_number(spec, host)?,
        guest: port_number(spec, guest)?,
    })
}

/// Parses a `-p` value and adds it to `opts`. A spec that names a listen
/// address sets it for that mapping only (in
/// [`RunOptions::bind_addresses`]); the others keep `bind_address`, which
/// defaults to 127.0.0.1.
pub fn add_port_spec(opts: &mut RunOptions, spec: &str) -> Result<()> {
    let p = parse_port_spec(spec)?;
    if let Some(bind) = p.bind {
        opts.bind_addresses.insert(p.host, bind);
    }
    opts.ports.push((p.host, p.guest));
    Ok(())
}

/// Adds a port mapping given as two numbers, as the bindings receive them
/// (JS numbers, Python ints): checked like a `-p` value, with the same
/// messages.
pub fn add_port(opts: &mut RunOptions, host: f64, guest: f64) -> Result<()> {
    let spec = format!("{host}:{guest}");
    let host = port_value(&spec, host)?;
    let guest = port_value(&spec, guest)?;
    opts.ports.push((host, guest));
    Ok(())
}

/// Adds a port mapping from a binding's map entry: the key is the host
/// side (`HOST`, or `IP:HOST` to choose the listen address), the value the
/// guest port.
pub fn add_port_entry(opts: &mut RunOptions, host: &str, guest: f64) -> Result<()> {
    match host.trim().parse::<f64>() {
        Ok(h) => add_port(opts, h, guest),
        Err(_) => add_port_spec(opts, &format!("{host}:{guest}")),
    }
}

fn port_value(spec: &str, v: f64) -> Result<u16> {
    if v.fract() != 0.0 || !v.is_finite() {
        return Err(Error::invalid(
            "port mapping",
            spec,
            format!("{v} is not a port number"),
        ));
    }
    if !(1.0..=65535.0).contains(&v) {
        return Err(Error::invalid(
            "port mapping",
            spec,
            format!("port {v} is out of range 1-65535"),
        ));
    }
    Ok(v as u16)
}

/// A count or port given as a float (JS numbers; Python ints convert
/// exactly): a whole number in `0..=max`, else an error naming `what`.
pub fn whole_number(what: &'static str, v: f64, max: u64) -> Result<u64> {
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

/// The longest duration a caller can ask for: ten years, so that "wait
/// forever" values (`u64::MAX` ms, `1e300` s) cannot overflow a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// A duration given in (fractional) seconds, as Python and the CLI give
/// them; capped at [`MAX_DURATION`].
pub fn seconds(what: &'static str, secs: f64) -> Result<Duration> {
    if secs.is_nan() || secs < 0.0 {
        return Err(Error::invalid(
            what,
            secs.to_string(),
            "must be a number of seconds >= 0",
        ));
    }
    Ok(Duration::try_from_secs_f64(secs)
        .unwrap_or(MAX_DURATION)
        .min(MAX_DURATION))
}

/// A duration given in (fractional) milliseconds, as Node gives them;
/// capped at [`MAX_DURATION`].
pub fn millis(what: &'static str, ms: f64) -> Result<Duration> {
    if ms.is_nan() || ms < 0.0 {
        return Err(Error::invalid(
            what,
            ms.to_string(),
            "must be a number of milliseconds >= 0",
        ));
    }
    seconds(what, ms / 1000.0)
}

/// A duration given in whole milliseconds, as C gives them; capped at
/// [`MAX_DURATION`].
pub fn millis_u64(ms: u64) -> Duration {
    Duration::from_millis(ms).min(MAX_DURATION)
}

/// Parses `HOST_PATH:GUEST_PATH` (the host path may itself contain ':';
/// the last ':' followed by '/' separates them).
pub fn parse_volume_spec(spec: &str) -> Result<(PathBuf, String)> {
    let idx = spec
        .rfind(":/")
        .filter(|i| *i > 0)
        .ok_or_else(|| Error::invalid("volume", spec, "expected HOST_PATH:/GUEST_PATH"))?;
    Ok((PathBuf::from(&spec[..idx]), spec[idx + 1..].to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> RunOptions {
        RunOptions::default()
    }

    fn err(o: RunOptions) -> String {
        validate(&o).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let c = validate(&opts()).unwrap();
        assert_eq!((c.memory, c.cpus, c.ssh_port), (1024, 1, None));
        assert!(c.binds.is_empty());
    }

    #[test]
    fn bad_values_are_named() {
        assert!(err(RunOptions {
            memory: Some(0),
            ..opts()
        })
        .contains("memory"));
        assert!(err(RunOptions {
            cpus: Some(0),
            ..opts()
        })
        .contains("cpus"));
        assert!(err(RunOptions {
            ports: vec![(0, 80)],
            ..opts()
        })
        .contains("0:80"));
        let dup = err(RunOptions {
            ports: vec![(8080, 80), (8080, 81)],
            ..opts()
        });
        assert!(dup.contains("8080") && dup.contains("twice"), "{dup}");
        let clash = err(RunOptions {
            ports: vec![(2300, 80)],
            ssh_port: Some(2300),
            ..opts()
        });
        assert!(clash.contains("SSH"), "{clash}");
        let v = err(RunOptions {
            volumes: vec![("/no/such/dir".into(), "/mnt/x".into())],
            ..opts()
        });
        assert!(v.contains("/no/such/dir"), "{v}");
        assert!(err(RunOptions {
            name: Some("bad name".into()),
            ..opts()
        })
        .contains("bad name"));
        assert!(err(RunOptions {
            ssh_key: Some("/no/key".into()),
            ..opts()
        })
        .contains("/no/key"));
    }

    #[test]
    fn volumes_need_distinct_tags() {
        let d = tempfile::tempdir().unwrap();
        let ok = validate(&RunOptions {
            volumes: vec![(d.path().into(), "/mnt/data".into())],
            ..opts()
        })
        .unwrap();
        assert_eq!(ok.volumes.values().next().unwrap(), "/mnt/data");
        let e = err(RunOptions {
            volumes: vec![
                (d.path().into(), "/a/data".into()),
                (d.path().into(), "/b/data".into()),
            ],
            ..opts()
        });
        assert!(e.contains("tag"), "{e}");
        assert!(err(RunOptions {
            volumes: vec![(d.path().into(), "rel".into())],
            ..opts()
        })
        .contains("absolute"));
    }

    #[test]
    fn port_specs() {
        assert_eq!(
            parse_port_spec("8080:80").unwrap(),
            PortSpec {
                bind: None,
                host: 8080,
                guest: 80
            }
        );
        let p = parse_port_spec("0.0.0.0:8080:80").unwrap();
        assert_eq!(p.bind, Some("0.0.0.0".parse().unwrap()));
        assert!(parse_port_spec("70000:80")
            .unwrap_err()
            .to_string()
            .contains("70000"));
        assert!(parse_port_spec("0:80")
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse_port_spec("80").is_err());
        assert!(parse_port_spec("x:80")
            .unwrap_err()
            .to_string()
            .contains("\"x\""));
    }

    #[test]
    fn each_mapping_keeps_its_own_listen_address() {
        let mut o = opts();
        add_port_spec(&mut o, "8080:80").unwrap();
        add_port_spec(&mut o, "0.0.0.0:8443:443").unwrap();
        add_port_spec(&mut o, "127.0.0.1:9000:90").unwrap();
        add_port_spec(&mut o, "192.168.1.5:9001:91").unwrap();
        assert_eq!(o.ports, [(8080, 80), (8443, 443), (9000, 90), (9001, 91)]);
        assert_eq!(o.bind_address, None);
        let c = validate(&o).unwrap();
        // Only the non-loopback ones are recorded; 8080 stays on loopback.
        let want: BTreeMap<u16, IpAddr> = [
            (8443, "0.0.0.0".parse().unwrap()),
            (9001, "192.168.1.5".parse().unwrap()),
        ]
        .into();
        assert_eq!(c.binds, want);
        // A default address applies to mappings without their own; an
        // explicit 127.0.0.1 still wins over it.
        o.bind_address = Some("10.0.0.1".parse().unwrap());
        let c = validate(&o).unwrap();
        assert_eq!(c.binds[&8080], "10.0.0.1".parse::<IpAddr>().unwrap());
        assert!(!c.binds.contains_key(&9000));
        assert_eq!(c.binds[&8443], "0.0.0.0".parse::<IpAddr>().unwrap());
        let mut v6 = opts();
        add_port_spec(&mut v6, "[::1]:8080:80").unwrap();
        assert!(err(v6).contains("IPv4"));
        let stray = RunOptions {
            bind_addresses: [(1234, "0.0.0.0".parse().unwrap())].into(),
            ..opts()
        };
        assert!(err(stray).contains("not forwarded"));
    }

    #[test]
    fn malformed_port_specs_say_what_is_wrong() {
        let e = parse_port_spec("8080:80:90:100").unwrap_err().to_string();
        assert!(
            e.contains("4 fields") && e.contains("8080:80:90:100"),
            "{e}"
        );
        assert!(!e.contains("not an IP address"), "{e}");
        let e = parse_port_spec("localhost:80:80").unwrap_err().to_string();
        assert!(e.contains("\"localhost\" is not an IP address"), "{e}");
        let p = parse_port_spec("[::1]:8080:80").unwrap();
        assert_eq!(p.bind, Some("::1".parse().unwrap()));
        assert!(parse_port_spec("[::1:8080:80").is_err());
        assert!(parse_port_spec("[::1]8080:80").is_err());
        assert!(parse_port_spec(":80")
            .unwrap_err()
            .to_string()
            .contains("\"\""));
        assert_eq!(
            parse_bind_address("[::1]").unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_bind_address("nope").is_err());
    }

    #[test]
    fn ssh_keys_are_checked_and_open_ones_get_a_private_copy() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let e = err(RunOptions {
            ssh_key: Some(d.path().into()),
            ..opts()
        });
        assert!(
            e.contains("is a directory") && !e.contains("no such file"),
            "{e}"
        );
        let key = d.path().join("id");
        std::fs::write(&key, "secret key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ok = validate(&RunOptions {
            ssh_key: Some(key.clone()),
            ..opts()
        })
        .unwrap();
        assert_eq!(ok.ssh_key, Some(key.clone()));
        let inst = d.path().join("inst");
        std::fs::create_dir(&inst).unwrap();
        assert_eq!(private_key_copy(&key, &inst).unwrap(), None);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(validate(&RunOptions {
            ssh_key: Some(key.clone()),
            ..opts()
        })
        .is_ok());
        let copy = private_key_copy(&key, &inst).unwrap().unwrap();
        assert_eq!(copy, inst.join("ssh_key"));
        assert_eq!(std::fs::read(&copy).unwrap(), b"secret key");
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!ssh_key_too_open(&copy));
    }

    #[test]
    fn numeric_ports_and_map_entries() {
        let mut o = opts();
        add_port(&mut o, 8080.0, 80.0).unwrap();
        add_port_entry(&mut o, "8443", 443.0).unwrap();
        add_port_entry(&mut o, "0.0.0.0:9000", 90.0).unwrap();
        assert_eq!(o.ports, [(8080, 80), (8443, 443), (9000, 90)]);
        // The address is that mapping's own; the others stay on loopback.
        assert_eq!(o.bind_address, None);
        assert_eq!(
            o.bind_addresses.get(&9000),
            Some(&"0.0.0.0".parse().unwrap())
        );
        assert_eq!(o.bind_addresses.len(), 1);
        let e = add_port(&mut o, 70000.0, 80.0).unwrap_err().to_string();
        assert!(e.contains("70000:80") && e.contains("out of range"), "{e}");
        let e = add_port(&mut o, 8080.0, 80.5).unwrap_err().to_string();
        assert!(e.contains("80.5") && e.contains("not a port number"), "{e}");
        assert!(add_port(&mut o, 0.0, 80.0).is_err());
        let e = add_port_entry(&mut o, "nope", 80.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope"), "{e}");
        assert_eq!(o.ports.len(), 3);
    }

    #[test]
    fn numbers_and_durations() {
        assert_eq!(whole_number("cpus", 4.0, 255).unwrap(), 4);
        for bad in [-1.0, 1.5, f64::NAN, 256.0] {
            let e = whole_number("cpus", bad, 255).unwrap_err().to_string();
            assert!(e.contains("cpus"), "{e}");
        }
        assert_eq!(seconds("t", 1.5).unwrap(), Duration::from_millis(1500));
        assert_eq!(millis("t", 1500.0).unwrap(), Duration::from_millis(1500));
        assert_eq!(seconds("t", 1e300).unwrap(), MAX_DURATION);
        assert_eq!(seconds("t", f64::INFINITY).unwrap(), MAX_DURATION);
        assert_eq!(millis_u64(u64::MAX), MAX_DURATION);
        assert!(seconds("timeout", -1.0)
            .unwrap_err()
            .to_string()
            .contains("timeout"));
        assert!(millis("t", f64::NAN).is_err());
        assert_eq!(
            parse_bind_address("[::1]").unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_bind_address("nowhere")
            .unwrap_err()
            .to_string()
            .contains("nowhere"));
    }

    #[test]
    fn volume_specs() {
        assert_eq!(
            parse_volume_spec("/a:b/c:/mnt/x").unwrap(),
            ("/a:b/c".into(), "/mnt/x".to_string())
        );
        assert!(parse_volume_spec("/a").is_err());
    }
}
