//! QEMU's command line.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{
    detect_accel, find_in_path, Accel, AccelChoice, BootImage, CommandLine, Hypervisor, VmSpec,
};
use crate::error::{Error, Result};
use crate::image::ImageFormat;

/// QEMU for the host architecture.
#[derive(Debug, Clone)]
pub struct QemuHypervisor {
    binary: Option<PathBuf>,
}

impl QemuHypervisor {
    /// Looks up `qemu-system-<arch>` on `PATH` (or `$VMCONTAINER_QEMU`).
    pub fn new() -> Self {
        let binary = std::env::var_os("VMCONTAINER_QEMU")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .or_else(|| find_in_path(&Self::binary_name()));
        QemuHypervisor { binary }
    }

    /// QEMU at an explicit path (it need not exist to build commands).
    pub fn with_binary(binary: impl Into<PathBuf>) -> Self {
        QemuHypervisor {
            binary: Some(binary.into()),
        }
    }

    /// `qemu-system-x86_64`, `qemu-system-aarch64`, … for this host.
    pub fn binary_name() -> String {
        format!("qemu-system-{}", std::env::consts::ARCH)
    }

    /// Path of the QEMU binary, if found.
    pub fn binary(&self) -> Option<&Path> {
        self.binary.as_deref()
    }

    /// `qemu-img` next to the QEMU binary, else on `PATH`.
    pub fn qemu_img(&self) -> Option<PathBuf> {
        self.binary
            .as_ref()
            .and_then(|b| b.parent())
            .map(|d| d.join("qemu-img"))
            .filter(|p| p.is_file())
            .or_else(|| find_in_path("qemu-img"))
    }
}

impl Default for QemuHypervisor {
    fn default() -> Self {
        Self::new()
    }
}

/// Escapes a value placed inside a QEMU `key=value,...` option: QEMU's
/// option parser treats `,,` as a literal comma, so doubling every comma
/// means a value can never end the option and add one of its own.
pub fn escape_option_value(value: &str) -> String {
    value.replace(',', ",,")
}

pub(super) fn path_value(what: &'static str, p: &Path) -> Result<String> {
    let s = p
        .to_str()
        .ok_or_else(|| Error::invalid(what, p.to_string_lossy(), "path is not valid UTF-8"))?;
    // Relative paths could be read by QEMU as a protocol prefix ("nbd:...").
    if !p.is_absolute() {
        return Err(Error::invalid(what, s, "path must be absolute"));
    }
    Ok(escape_option_value(s))
}

impl Hypervisor for QemuHypervisor {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn available(&self) -> bool {
        self.binary.as_ref().is_some_and(|b| b.is_file())
    }

    fn build_command(&self, spec: &VmSpec) -> Result<CommandLine> {
        let program = self.binary.clone().ok_or_else(|| {
            Error::HypervisorUnavailable(format!("{} not found on PATH", Self::binary_name()))
        })?;
        let mut a: Vec<OsString> = Vec::new();
        let mut push = |parts: &[&str]| a.extend(parts.iter().map(OsString::from));

        push(&[
            "-name",
            &format!("vmcontainer-{}", escape_option_value(&spec.id)),
        ]);
        push(&["-accel", spec.accel.as_str()]);
        if spec.accel != Accel::Tcg {
            push(&["-cpu", "host"]);
        }
        push(&["-m", &spec.memory_mb.to_string()]);
        push(&["-smp", &spec.cpus.to_string()]);
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);

        match &spec.image {
            BootImage::Iso(p) => {
                let v = path_value("image path", p)?;
                push(&[
                    "-drive",
                    &format!("file={v},media=cdrom,readonly=on,format=raw"),
                ]);
                push(&["-boot", "d"]);
            }
            BootImage::Disk { path, format } => {
                let v = path_value("disk path", path)?;
                push(&["-drive", &format!("file={v},format={format}")]);
                push(&["-boot", "c"]);
            }
            BootImage::Kernel(k) => {
                // -kernel, -initrd and -append take raw values, not option
                // lists, so they need no escaping (and must not get any).
                let cmdline = k.read_cmdline().map_err(|e| {
                    Error::io(
                        "read kernel command line",
                        k.cmdline.clone().unwrap_or_default(),
                        e,
                    )
                })?;
                a.push("-kernel".into());
                a.push(k.kernel.clone().into());
                a.push("-initrd".into());
                a.push(k.initrd.clone().into());
                a.push("-append".into());
                a.push(cmdline.into());
            }
        }

        // Serial console: a socket for interactive attach, with everything
        // the guest prints also appended to the log file.
        let console = path_value("console socket", &spec.console_socket())?;
        let log = path_value("log path", &spec.log_path)?;
        a.push("-chardev".into());
        a.push(
            format!(
                "socket,id=console0,path={console},server=on,wait=off,logfile={log},logappend=on"
            )
            .into(),
        );
        a.push("-serial".into());
        a.push("chardev:console0".into());

        let qmp = path_value("QMP socket", &spec.qmp_socket())?;
        a.push("-qmp".into());
        a.push(format!("unix:{qmp},server=on,wait=off").into());

        // The guest agent's port, on the FIFO pair `qga.in`/`qga.out` (see
        // the qga module for why not a socket).
        let qga = path_value("guest agent channel", &spec.agent_channel())?;
        a.push("-chardev".into());
        a.push(format!("pipe,id={},path={qga}", crate::qga::CHARDEV_ID).into());
        a.push("-device".into());
        a.push("virtio-serial-pci,id=vser0".into());
        a.push("-device".into());
        a.push(
            format!(
                "virtserialport,bus=vser0.0,chardev={},name={}",
                crate::qga::CHARDEV_ID,
                crate::qga::PORT_NAME
            )
            .into(),
        );
        // Bulk data into the guest, beside the agent (see data_port).
        let data = path_value("data port channel", &spec.data_channel())?;
        a.push("-chardev".into());
        a.push(format!("pipe,id={},path={data}", crate::qga::data_port::CHARDEV_ID).into());
        a.push("-device".into());
        a.push(
            format!(
                "virtserialport,bus=vser0.0,chardev={},name={}",
                crate::qga::data_port::CHARDEV_ID,
                crate::qga::data_port::PORT_NAME
            )
            .into(),
        );

        let mut netdev = String::from("user,id=net0");
        for p in &spec.ports {
            let bind = match p.bind {
                std::net::IpAddr::V4(v4) => v4.to_string(),
                std::net::IpAddr::V6(_) => {
                    return Err(Error::invalid(
                        "bind address",
                        p.bind.to_string(),
                        "QEMU user networking forwards IPv4 addresses only",
                    ))
                }
            };
            netdev.push_str(&format!(",hostfwd=tcp:{bind}:{}-:{}", p.host, p.guest));
        }
        a.push("-netdev".into());
        a.push(netdev.into());
        a.push("-device".into());
        a.push("virtio-net-pci,netdev=net0".into());

        for (i, s) in spec.shares.iter().enumerate() {
            let path = path_value("volume host path", &s.host)?;
            let tag = escape_option_value(&s.tag);
            a.push("-fsdev".into());
            a.push(format!("local,id=fs{i},path={path},security_model=none").into());
            a.push("-device".into());
            a.push(format!("virtio-9p-pci,fsdev=fs{i},mount_tag={tag}").into());
        }

        // A VM generation ID (an ACPI device, no PCI slot): QEMU gives each
        // VM a fresh random one, so a guest resumed from a snapshot sees it
        // change and Linux (5.18+) reseeds its RNG; clones of one snapshot
        // then never share random numbers.
        if cfg!(target_arch = "x86_64") {
            a.push("-device".into());
            a.push("vmgenid,guid=auto".into());
        }

        a.push("-pidfile".into());
        a.push(spec.pid_file().into());
        // A daemonized QEMU keeps its stderr only when it has a log file;
        // there it says how it ended. QEMU reads `%` in this name as a
        // format, so a path with one goes without (exit reasons then rest on
        // the pid file alone).
        let log = spec.hypervisor_log();
        if !log.as_os_str().as_encoded_bytes().contains(&b'%') {
            a.push("-D".into());
            a.push(log.into());
        }
        if spec.daemonize {
            a.push("-daemonize".into());
        }
        Ok(CommandLine { program, args: a })
    }

    fn prepare_disk(&self, image: &Path, format: ImageFormat, overlay: &Path) -> Result<PathBuf> {
        let qemu_img = self.qemu_img().ok_or_else(|| {
            Error::HypervisorUnavailable("qemu-img not found (install qemu-utils)".into())
        })?;
        // The overlay records the image's absolute path as its backing file;
        // -F pins the backing format so QEMU never probes it.
        let out = std::process::Command::new(&qemu_img)
            .args(["create", "-q", "-f", "qcow2", "-F", format.as_str(), "-b"])
            .arg(image)
            .arg(overlay)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| Error::io("run qemu-img", &qemu_img, e))?;
        if !out.status.success() {
            return Err(Error::invalid(
                "image",
                image.display().to_string(),
                format!(
                    "qemu-img could not create an overlay on it: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ));
        }
        Ok(overlay.to_path_buf())
    }

    fn accel(&self) -> Result<AccelChoice> {
        let bin = self.binary.as_deref().ok_or_else(|| {
            Error::HypervisorUnavailable(format!("{} not found on PATH", Self::binary_name()))
        })?;
        detect_accel(bin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypervisor::{PortForward, Share};
    use crate::image::KernelImage;

    fn spec(image: BootImage) -> VmSpec {
        VmSpec {
            id: "0a1b2c3d".into(),
            image,
            memory_mb: 512,
            cpus: 2,
            ports: vec![
                PortForward {
                    bind: "127.0.0.1".parse().unwrap(),
                    host: 0,
                    guest: 22,
                },
                PortForward {
                    bind: "127.0.0.1".parse().unwrap(),
                    host: 8080,
                    guest: 80,
                },
            ],
            shares: vec![],
            log_path: "/h/logs/0a1b2c3d.log".into(),
            runtime_dir: "/h/containers/0a1b2c3d".into(),
            accel: Accel::Tcg,
            daemonize: true,
        }
    }

    fn qemu() -> QemuHypervisor {
        QemuHypervisor {
            binary: Some("/usr/bin/qemu-system-x86_64".into()),
        }
    }

    fn args(s: &VmSpec) -> Vec<String> {
        qemu().build_command(s).unwrap().args_lossy()
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn each_format_is_attached_its_own_way() {
        let iso = args(&spec(BootImage::Iso("/i/a.iso".into())));
        assert_eq!(
            after(&iso, "-drive"),
            ["file=/i/a.iso,media=cdrom,readonly=on,format=raw"]
        );
        assert_eq!(after(&iso, "-boot"), ["d"]);
        for f in ["qcow2", "vmdk", "raw"] {
            let d = args(&spec(BootImage::Disk {
                path: "/c/disk.qcow2".into(),
                format: f,
            }));
            assert_eq!(
                after(&d, "-drive"),
                [format!("file=/c/disk.qcow2,format={f}")]
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let cmd = dir.path().join("k-cmdline");
        std::fs::write(&cmd, "console=ttyS0 a,b=c\n").unwrap();
        let k = args(&spec(BootImage::Kernel(KernelImage {
            kernel: "/k/k-kernel".into(),
            initrd: "/k/k-initrd.img".into(),
            cmdline: Some(cmd),
        })));
        assert_eq!(after(&k, "-kernel"), ["/k/k-kernel"]);
        assert_eq!(after(&k, "-initrd"), ["/k/k-initrd.img"]);
        assert_eq!(after(&k, "-append"), ["console=ttyS0 a,b=c"]);
        assert!(after(&k, "-drive").is_empty());
    }

    #[test]
    fn ports_forward_on_loopback_and_resources_are_set() {
        let a = args(&spec(BootImage::Iso("/i/a.iso".into())));
        assert_eq!(
            after(&a, "-netdev"),
            ["user,id=net0,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=tcp:127.0.0.1:8080-:80"]
        );
        assert_eq!(after(&a, "-m"), ["512"]);
        assert_eq!(after(&a, "-smp"), ["2"]);
        assert_eq!(after(&a, "-accel"), ["tcg"]);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(after(&a, "-device").last(), Some(&"vmgenid,guid=auto"));
        }
        assert!(a.contains(&"-daemonize".to_string()));
        assert_eq!(
            after(&a, "-pidfile"),
            ["/h/containers/0a1b2c3d/hypervisor.pid"]
        );
        assert_eq!(after(&a, "-D"), ["/h/containers/0a1b2c3d/hypervisor.log"]);
        let mut odd = spec(BootImage::Iso("/i/a.iso".into()));
        odd.runtime_dir = "/h/100%d/x".into();
        assert!(after(&args(&odd), "-D").is_empty());
        assert_eq!(
            after(&a, "-qmp"),
            ["unix:/h/containers/0a1b2c3d/qmp.sock,server=on,wait=off"]
        );
    }

    #[test]
    fn every_vm_gets_the_guest_agent_port() {
        let mut s = spec(BootImage::Iso("/i/a.iso".into()));
        s.runtime_dir = "/r,un/0a1b2c3d".into();
        let a = args(&s);
        assert_eq!(
            after(&a, "-chardev")[1],
            "pipe,id=qga0,path=/r,,un/0a1b2c3d/qga"
        );
        let dev = after(&a, "-device");
        assert!(dev.contains(&"virtio-serial-pci,id=vser0"), "{dev:?}");
        assert!(
            dev.contains(&"virtserialport,bus=vser0.0,chardev=qga0,name=org.qemu.guest_agent.0"),
            "{dev:?}"
        );
        // And the data port beside it, its path escaped the same way.
        assert_eq!(
            after(&a, "-chardev")[2],
            "pipe,id=data0,path=/r,,un/0a1b2c3d/data"
        );
        assert!(
            dev.contains(&"virtserialport,bus=vser0.0,chardev=data0,name=org.vmcontainer.data.0"),
            "{dev:?}"
        );
    }

    #[test]
    fn commas_in_paths_cannot_add_options() {
        let mut s = spec(BootImage::Disk {
            path: "/evil,if=none,file=/etc/shadow.qcow2".into(),
            format: "qcow2",
        });
        s.shares.push(Share {
            host: "/share,readonly=off,x".into(),
            tag: "d,a".into(),
        });
        s.log_path = "/l,og/x.log".into();
        let a = args(&s);
        assert_eq!(
            after(&a, "-drive"),
            ["file=/evil,,if=none,,file=/etc/shadow.qcow2,format=qcow2"]
        );
        assert_eq!(
            after(&a, "-fsdev"),
            ["local,id=fs0,path=/share,,readonly=off,,x,security_model=none"]
        );
        assert_eq!(
            after(&a, "-device")
                .into_iter()
                .find(|d| d.starts_with("virtio-9p-pci")),
            Some("virtio-9p-pci,fsdev=fs0,mount_tag=d,,a")
        );
        assert!(after(&a, "-chardev")[0].contains("logfile=/l,,og/x.log,"));
        // Splitting on single commas (QEMU's rule) yields no injected key.
        for opt in after(&a, "-drive") {
            let keys: Vec<&str> = opt
                .replace(",,", "\u{0}")
                .split(',')
                .map(|kv| kv.split('=').next().unwrap().to_owned())
                .map(|k| Box::leak(k.into_boxed_str()) as &str)
                .collect();
            assert_eq!(keys, ["file", "format"]);
        }
    }

    #[test]
    fn relative_paths_are_refused() {
        let s = spec(BootImage::Iso("nbd:evil".into()));
        assert!(qemu().build_command(&s).is_err());
    }
}
