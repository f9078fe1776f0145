//! What QEMU's migration needs from a command line: the part of it a saved
//! VM state depends on (compared before a snapshot is resumed), and the
//! options that make a VM load a saved state instead of booting.

use std::ffi::OsString;
use std::path::Path;

use super::qemu::{escape_option_value, path_value};
use crate::error::{Error, Result};

/// Options that only configure the host side (sockets, files, the process)
/// and so may differ between the VM that saved a state and the one that
/// loads it. `-machine` is compared separately, as the resolved machine
/// type, because a resumed VM pins it explicitly.
const HOST_SIDE: &[&str] = &[
    "-name",
    "-chardev",
    "-qmp",
    "-mon",
    "-monitor",
    "-netdev",
    "-fsdev",
    "-pidfile",
    "-daemonize",
    "-D",
    "-incoming",
    "-object",
    "-machine",
];

/// Options whose value is a host path: that they are present matters, the
/// path does not.
const PATH_VALUED: &[&str] = &["-kernel", "-initrd"];

/// Keys of `-drive` that name the host file rather than what the guest
/// sees.
const DRIVE_HOST_KEYS: &[&str] = &["file", "format"];

/// The guest-visible part of a QEMU command line, in order (device order
/// decides PCI addresses): every option except the host-side ones, with
/// host paths left out. Two VMs whose lists are equal can exchange saved
/// state; the program name (the first element) is skipped.
pub fn guest_abi(args: &[OsString]) -> Vec<String> {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let start = usize::from(args.first().is_some_and(|a| !a.starts_with('-')));
    let mut out = Vec::new();
    let mut i = start;
    while i < args.len() {
        let opt = args[i].as_str();
        // A value is the next element when it is not itself an option.
        let value = args.get(i + 1).filter(|v| !v.starts_with('-'));
        i += 1 + usize::from(value.is_some());
        if HOST_SIDE.contains(&opt) {
            continue;
        }
        match (opt, value) {
            (o, Some(_)) if PATH_VALUED.contains(&o) => out.push(o.to_string()),
            ("-drive", Some(v)) => match without_keys(v, DRIVE_HOST_KEYS) {
                rest if rest.is_empty() => out.push("-drive".into()),
                rest => out.push(format!("-drive {rest}")),
            },
            (o, Some(v)) => out.push(format!("{o} {v}")),
            (o, None) => out.push(o.to_string()),
        }
    }
    out
}

/// `opts` (a QEMU `key=value,...` list) without `keys`, keeping escaped
/// commas (`,,`) inside values intact.
fn without_keys(opts: &str, keys: &[&str]) -> String {
    split_options(opts)
        .into_iter()
        .filter(|kv| !keys.contains(&kv.split('=').next().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a QEMU option list at single commas (`,,` is a literal comma).
fn split_options(opts: &str) -> Vec<&str> {
    let bytes = opts.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < bytes.len() {
        if bytes[i] == b',' {
            if bytes.get(i + 1) == Some(&b',') {
                i += 2;
                continue;
            }
            parts.push(&opts[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    parts.push(&opts[start..]);
    parts
}

/// Guest RAM kept in a file, and how a VM maps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryImage<'a> {
    /// The file (as large as the guest's RAM, sparse).
    pub path: &'a Path,
    /// Guest RAM in MB (the VM's `-m`).
    pub memory_mb: u32,
    /// The machine type's RAM block name (`pc.ram` on x86): the state
    /// names RAM blocks, so the backend must carry this ID.
    pub ram_id: &'a str,
    /// The machine type the state was saved from (e.g. `pc-i440fx-7.2`).
    pub machine: &'a str,
    /// `true`: writes go to the file (used to produce it); `false`: pages
    /// are read from the file and copied on write, so any number of VMs
    /// share one file through the page cache.
    pub shared: bool,
}

/// Arguments appended to a VM's command line so that it waits, paused,
/// for saved state (`-incoming defer`, loaded later over QMP), with its
/// RAM mapped from `memory`. Why a load fails, QEMU writes to its `-D`
/// log (see [`super::hypervisor_log`]).
pub fn incoming_args(memory: &MemoryImage<'_>) -> Result<Vec<OsString>> {
    for (what, v) in [
        ("machine type", memory.machine),
        ("RAM block name", memory.ram_id),
    ] {
        if v.is_empty()
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            return Err(Error::invalid(
                what,
                v,
                "expected letters, digits, '.', '_' or '-'",
            ));
        }
    }
    let mem_path = path_value("memory image", memory.path)?;
    let id = escape_option_value(memory.ram_id);
    let share = if memory.shared { "on" } else { "off" };
    Ok(vec![
        "-object".into(),
        format!(
            "memory-backend-file,id={id},size={}M,mem-path={mem_path},share={share}",
            memory.memory_mb
        )
        .into(),
        "-machine".into(),
        format!(
            "type={},memory-backend={id}",
            escape_option_value(memory.machine)
        )
        .into(),
        "-incoming".into(),
        "defer".into(),
    ])
}

/// The version of the QEMU binary (`7.2.22` from "QEMU emulator version
/// 7.2.22 (Debian ...)"), as QMP `query-version` reports it.
pub fn qemu_version(binary: &Path) -> Result<String> {
    let out = std::process::Command::new(binary)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("run", binary, e))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_version(&text).ok_or_else(|| {
        Error::HypervisorUnavailable(format!(
            "{} --version printed no version: {}",
            binary.display(),
            text.trim()
        ))
    })
}

fn parse_version(text: &str) -> Option<String> {
    let rest = text.split("version").nth(1)?.trim_start();
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    // query-version reports major.minor.micro; "8.2" means "8.2.0".
    let parts: Vec<&str> = v.split('.').filter(|p| !p.is_empty()).collect();
    match parts.len() {
        0 => None,
        1 => Some(format!("{}.0.0", parts[0])),
        2 => Some(format!("{}.{}.0", parts[0], parts[1])),
        _ => Some(parts[..3].join(".")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn host_side_options_and_paths_do_not_count() {
        let a = os(&[
            "/usr/bin/qemu-system-x86_64",
            "-name",
            "vmcontainer-aaaa0000",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nodefaults",
            "-drive",
            "file=/h/containers/aaaa0000/disk.qcow2,format=qcow2",
            "-chardev",
            "socket,id=console0,path=/h/a.sock,server=on,wait=off",
            "-serial",
            "chardev:console0",
            "-netdev",
            "user,id=net0,hostfwd=tcp:127.0.0.1:0-:22",
            "-device",
            "virtio-net-pci,netdev=net0",
            "-pidfile",
            "/h/p",
            "-daemonize",
        ]);
        let b = os(&[
            "qemu-system-x86_64",
            "-name",
            "vmcontainer-bbbb1111",
            "-accel",
            "tcg",
            "-m",
            "256",
            "-nodefaults",
            "-drive",
            "file=/other/disk,,x.qcow2,format=qcow2",
            "-chardev",
            "socket,id=console0,path=/elsewhere.sock,server=on,wait=off",
            "-serial",
            "chardev:console0",
            "-netdev",
            "user,id=net0,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=tcp:127.0.0.1:8080-:80",
            "-device",
            "virtio-net-pci,netdev=net0",
            "-pidfile",
            "/x/p",
            "-object",
            "memory-backend-file,id=pc.ram,size=256M,mem-path=/s/m,share=off",
            "-machine",
            "type=pc-i440fx-7.2,memory-backend=pc.ram",
            "-incoming",
            "defer",
            "-D",
            "/x/log",
        ]);
        assert_eq!(guest_abi(&a), guest_abi(&b));
        assert_eq!(
            guest_abi(&a),
            [
                "-accel tcg",
                "-m 256",
                "-nodefaults",
                "-drive",
                "-serial chardev:console0",
                "-device virtio-net-pci,netdev=net0"
            ]
        );
    }

    #[test]
    fn a_different_device_set_or_size_differs() {
        let base = os(&["q", "-m", "256", "-device", "virtio-net-pci,netdev=net0"]);
        let more = os(&[
            "q",
            "-m",
            "256",
            "-device",
            "virtio-net-pci,netdev=net0",
            "-device",
            "virtio-serial-pci",
        ]);
        let bigger = os(&["q", "-m", "512", "-device", "virtio-net-pci,netdev=net0"]);
        let cdrom = os(&[
            "q",
            "-drive",
            "file=/a.iso,media=cdrom,readonly=on,format=raw",
        ]);
        let disk = os(&["q", "-drive", "file=/a.qcow2,format=qcow2"]);
        assert_ne!(guest_abi(&base), guest_abi(&more));
        assert_ne!(guest_abi(&base), guest_abi(&bigger));
        assert_ne!(guest_abi(&cdrom), guest_abi(&disk));
        assert_eq!(guest_abi(&cdrom), ["-drive media=cdrom,readonly=on"]);
    }

    #[test]
    fn kernel_paths_are_ignored_but_the_command_line_is_not() {
        let a = os(&[
            "q",
            "-kernel",
            "/a/k",
            "-initrd",
            "/a/i",
            "-append",
            "console=ttyS0",
        ]);
        let b = os(&[
            "q",
            "-kernel",
            "/b/k",
            "-initrd",
            "/b/i",
            "-append",
            "console=ttyS0",
        ]);
        let c = os(&[
            "q", "-kernel", "/b/k", "-initrd", "/b/i", "-append", "quiet",
        ]);
        assert_eq!(guest_abi(&a), guest_abi(&b));
        assert_ne!(guest_abi(&a), guest_abi(&c));
    }

    #[test]
    fn incoming_args_escape_and_validate() {
        let m = MemoryImage {
            path: Path::new("/s/a,b/memory.raw"),
            memory_mb: 256,
            ram_id: "pc.ram",
            machine: "pc-i440fx-7.2",
            shared: false,
        };
        let a: Vec<String> = incoming_args(&m)
            .unwrap()
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            a,
            [
                "-object",
                "memory-backend-file,id=pc.ram,size=256M,mem-path=/s/a,,b/memory.raw,share=off",
                "-machine",
                "type=pc-i440fx-7.2,memory-backend=pc.ram",
                "-incoming",
                "defer"
            ]
        );
        let evil = MemoryImage {
            machine: "pc,accel=kvm",
            ..m.clone()
        };
        assert!(incoming_args(&evil).is_err());
        let relative = MemoryImage {
            path: Path::new("memory.raw"),
            ..m
        };
        assert!(incoming_args(&relative).is_err());
    }

    #[test]
    fn versions_parse_like_query_version() {
        assert_eq!(
            parse_version(
                "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright"
            ),
            Some("7.2.22".into())
        );
        assert_eq!(
            parse_version("QEMU emulator version 8.2.2\n"),
            Some("8.2.2".into())
        );
        assert_eq!(
            parse_version("QEMU emulator version 9.0\n"),
            Some("9.0.0".into())
        );
        assert_eq!(parse_version("nothing here"), None);
    }
}
