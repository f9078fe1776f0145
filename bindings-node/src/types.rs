//! The JS-facing shapes of the core's values, and their conversion from the
//! core types. Field names are the camelCase forms of the state file's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::{Buffer, Float64Array, Unknown};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status as NapiStatus;
use napi_derive::napi;

/// Lifecycle status, as written in `containers.json`.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerStatus {
    /// The hypervisor process is alive.
    Running,
    /// The VM exited normally or was stopped.
    Stopped,
    /// The VM exited with an error.
    Error,
    /// Ended by a signal that `stop` did not send (an outside kill, a
    /// crash, the end of its foreground run); go-container writes it after
    /// a SIGKILL.
    Killed,
    /// Recorded before the VM starts; an interrupted start becomes `error`.
    Starting,
    /// A status this version does not know (a newer version's); the
    /// container's `statusText` holds it.
    Unknown,
}

impl From<&vmcontainer::Status> for ContainerStatus {
    fn from(s: &vmcontainer::Status) -> Self {
        match s {
            vmcontainer::Status::Running => ContainerStatus::Running,
            vmcontainer::Status::Stopped => ContainerStatus::Stopped,
            vmcontainer::Status::Error => ContainerStatus::Error,
            vmcontainer::Status::Killed => ContainerStatus::Killed,
            vmcontainer::Status::Starting => ContainerStatus::Starting,
            vmcontainer::Status::Unknown(_) => ContainerStatus::Unknown,
        }
    }
}

/// A bootable image format.
#[napi(string_enum)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// ISO 9660, attached read-only as a CD-ROM.
    #[napi(value = "iso")]
    Iso,
    /// QEMU copy-on-write v2.
    #[napi(value = "qcow2")]
    Qcow2,
    /// VMware disk.
    #[napi(value = "vmdk")]
    Vmdk,
    /// Raw disk (`.raw`, `.img`).
    #[napi(value = "raw")]
    Raw,
    /// LinuxKit's `NAME-kernel` + `NAME-initrd.img` (+ `NAME-cmdline`).
    #[napi(value = "kernel+initrd")]
    KernelInitrd,
    /// Anything else.
    #[napi(value = "unknown")]
    Unknown,
}

impl From<vmcontainer::ImageFormat> for ImageFormat {
    fn from(f: vmcontainer::ImageFormat) -> Self {
        use vmcontainer::ImageFormat as F;
        match f {
            F::Iso => ImageFormat::Iso,
            F::Qcow2 => ImageFormat::Qcow2,
            F::Vmdk => ImageFormat::Vmdk,
            F::Raw => ImageFormat::Raw,
            F::KernelInitrd => ImageFormat::KernelInitrd,
            F::Unknown => ImageFormat::Unknown,
        }
    }
}

/// A hypervisor backend.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HypervisorName {
    /// QEMU (KVM, HVF or TCG).
    Qemu,
    /// Hyperkit (macOS only).
    Hyperkit,
}

impl HypervisorName {
    /// The name of a core hypervisor.
    pub fn of(h: &dyn vmcontainer::Hypervisor) -> Self {
        match h.name() {
            "hyperkit" => HypervisorName::Hyperkit,
            _ => HypervisorName::Qemu,
        }
    }
}

/// One container (a VM) as recorded in the state file.
#[napi(object, object_from_js = false)]
pub struct Container {
    /// 8 lowercase hex characters.
    pub id: String,
    /// Unique name (the ID when none was given).
    pub name: String,
    /// Absolute image path.
    pub image: String,
    /// Last known status (reconciled with the process on every read).
    pub status: ContainerStatus,
    /// The status exactly as the state file has it (differs from `status`
    /// only for `'unknown'`).
    pub status_text: String,
    /// PID of the hypervisor process.
    pub pid: i32,
    /// When the VM was (last) started.
    pub started_at: DateTime<Utc>,
    /// Forwarded ports: host port → guest port.
    pub ports: BTreeMap<String, u32>,
    /// Memory in MB.
    pub memory: u32,
    /// Number of virtual CPUs.
    pub cpus: u32,
    /// Loopback host port forwarded to the guest's SSH port.
    pub ssh_port: u32,
    /// Private key that `exec` uses.
    pub ssh_key: Option<String>,
    /// Shared directories: host path → guest path.
    pub volumes: BTreeMap<String, String>,
    /// Hypervisor name (`qemu`, `hyperkit`).
    pub hypervisor: Option<String>,
    /// Accelerator chosen at start (`kvm`, `hvf`, `tcg`).
    pub accel: Option<String>,
    /// Detected image format.
    pub format: Option<ImageFormat>,
    /// Address forwarded ports listen on, as recorded before each mapping
    /// kept its own (see `bindAddresses`).
    pub bind_address: Option<String>,
    /// Listen address of every forwarded port that does not listen on
    /// 127.0.0.1: host port → address.
    pub bind_addresses: BTreeMap<String, String>,
    /// Exit code of the hypervisor, when known.
    pub exit_code: Option<i32>,
    /// Signal that ended the hypervisor, when one did.
    pub exit_signal: Option<i32>,
    /// How the VM ended, in words.
    pub exit_reason: Option<String>,
    /// When the VM was seen to stop.
    pub stopped_at: Option<DateTime<Utc>>,
    /// The snapshot this container was resumed from, if any.
    pub snapshot: Option<String>,
}

impl From<vmcontainer::Container> for Container {
    fn from(c: vmcontainer::Container) -> Self {
        Container {
            ports: c
                .ports
                .iter()
                .map(|(h, g)| (h.to_string(), u32::from(*g)))
                .collect(),
            bind_addresses: c
                .wide_forwards()
                .into_iter()
                .map(|(h, a)| (h.to_string(), a.to_string()))
                .collect(),
            volumes: c.volumes.into_iter().collect(),
            status: (&c.status).into(),
            status_text: c.status.as_str().to_string(),
            pid: c.pid,
            started_at: c.started_at,
            memory: c.memory,
            cpus: c.cpus,
            ssh_port: c.ssh_port.into(),
            ssh_key: c.ssh_key,
            hypervisor: c.hypervisor,
            accel: c.accel,
            format: c.format.map(Into::into),
            bind_address: c.bind_address.map(|a| a.to_string()),
            exit_code: c.exit_code,
            exit_signal: c.exit_signal,
            exit_reason: c.exit_reason,
            stopped_at: c.stopped_at,
            snapshot: c.snapshot,
            id: c.id,
            name: c.name,
            image: c.image,
        }
    }
}

/// A list of containers packed for `Manager.list`: every string field in
/// one string, every number (and each string's end offset in `text`, in
/// UTF-16 units as JS counts) in one array, in the field order index.js
/// unpacks (`unpackContainers`). Two values cross into JS instead of a
/// property write per field, and JS builds the objects with literals of
/// one shape, without parsing: what keeps `list()` near the Rust call.
#[napi(object, object_from_js = false)]
pub struct PackedContainers {
    /// The string fields, back to back.
    pub text: String,
    /// Counts, numbers and string ends (-1: absent; NaN: absent number).
    pub nums: Float64Array,
}

/// Packs `v` (see [`PackedContainers`]); built off the event loop.
pub struct Packer {
    text: String,
    nums: Vec<f64>,
    /// Length of `text` in UTF-16 units.
    end: usize,
}

impl Packer {
    fn str(&mut self, s: &str) {
        self.text.push_str(s);
        self.end += if s.is_ascii() {
            s.len()
        } else {
            s.encode_utf16().count()
        };
        self.nums.push(self.end as f64);
    }

    fn opt_str(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.str(s),
            None => self.nums.push(-1.0),
        }
    }

    fn num(&mut self, n: Option<f64>) {
        self.nums.push(n.unwrap_or(f64::NAN));
    }

    /// Packs the containers in the order `Container` lists its fields.
    pub fn pack(v: Vec<vmcontainer::Container>) -> Packer {
        let mut p = Packer {
            text: String::with_capacity(v.len() * 96),
            nums: Vec::with_capacity(v.len() * 32),
            end: 0,
        };
        p.nums.push(v.len() as f64);
        for c in &v {
            p.str(&c.id);
            p.str(&c.name);
            p.str(&c.image);
            p.str(match c.status {
                vmcontainer::Status::Unknown(_) => "unknown",
                ref s => s.as_str(),
            });
            p.str(c.status.as_str());
            p.num(Some(f64::from(c.pid)));
            p.num(Some(c.started_at.timestamp_millis() as f64));
            p.nums.push(c.ports.len() as f64);
            for (h, g) in &c.ports {
                p.nums.extend([f64::from(*h), f64::from(*g)]);
            }
            p.num(Some(f64::from(c.memory)));
            p.num(Some(f64::from(c.cpus)));
            p.num(Some(f64::from(c.ssh_port)));
            p.opt_str(c.ssh_key.as_deref());
            p.nums.push(c.volumes.len() as f64);
            for (h, g) in &c.volumes {
                p.str(h);
                p.str(g);
            }
            p.opt_str(c.hypervisor.as_deref());
            p.opt_str(c.accel.as_deref());
            p.opt_str(c.format.map(|f| f.as_str()));
            p.opt_str(c.bind_address.map(|a| a.to_string()).as_deref());
            let wide = c.wide_forwards();
            p.nums.push(wide.len() as f64);
            for (h, a) in wide {
                p.nums.push(f64::from(h));
                p.str(&a.to_string());
            }
            p.num(c.exit_code.map(f64::from));
            p.num(c.exit_signal.map(f64::from));
            p.opt_str(c.exit_reason.as_deref());
            p.num(c.stopped_at.map(|t| t.timestamp_millis() as f64));
            p.opt_str(c.snapshot.as_deref());
        }
        p
    }

    /// The JS value (on the JS thread).
    pub fn into_js(self) -> PackedContainers {
        PackedContainers {
            text: self.text,
            nums: Float64Array::new(self.nums),
        }
    }
}

/// A container's record plus where its files are.
#[napi(object, object_from_js = false)]
pub struct ContainerDetails {
    /// The state record.
    pub container: Container,
    /// Serial console log.
    pub log_path: String,
    /// Persistent per-container directory (disk overlay, pinned host keys).
    pub instance_dir: String,
    /// Private runtime directory (sockets, pid file).
    pub runtime_dir: Option<String>,
    /// Copy-on-write overlay the guest writes to (disk images only).
    pub disk: Option<String>,
    /// QEMU monitor socket.
    pub qmp_socket: Option<String>,
    /// Serial console socket.
    pub console_socket: Option<String>,
    /// How the guest can be reached now (`agent`, `ssh`); empty when it is
    /// not running or nothing answers yet.
    pub transports: Vec<Transport>,
}

/// A path as a JS string (lossy for non-UTF-8).
pub fn path(p: std::path::PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

impl From<vmcontainer::Inspect> for ContainerDetails {
    fn from(i: vmcontainer::Inspect) -> Self {
        ContainerDetails {
            log_path: path(i.log_path),
            instance_dir: path(i.instance_dir),
            runtime_dir: i.container.runtime_dir.clone().map(path),
            disk: i.container.disk.clone().map(path),
            qmp_socket: i.qmp_socket.map(path),
            console_socket: i.console_socket.map(path),
            transports: i.transports.into_iter().map(Transport::from).collect(),
            container: i.container.into(),
        }
    }
}

/// A VM's memory, devices and disk saved at one instant, from which
/// `Manager.runSnapshot` starts new containers.
#[napi(object, object_from_js = false)]
pub struct Snapshot {
    /// Its name (unique in the home).
    pub name: String,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// ID of the container it was taken from.
    pub source_id: String,
    /// Name of that container at the time.
    pub source_name: String,
    /// The image the source booted (still needed to resume).
    pub image: String,
    /// Memory in MB of every VM resumed from it.
    pub memory: u32,
    /// Virtual CPUs of every VM resumed from it.
    pub cpus: u32,
    /// Whether it holds a disk (disk images; ISO and kernel guests have none).
    pub disk: bool,
    /// QEMU version that saved it; resuming needs the same.
    pub qemu_version: String,
    /// QEMU machine type it was saved from.
    pub machine: String,
    /// Accelerator it ran under (`tcg`, `kvm`, `hvf`).
    pub accel: String,
    /// The guest-visible QEMU options it needs, in order.
    pub devices: Vec<String>,
    /// Its directory.
    pub path: Option<String>,
    /// Bytes its files take on disk.
    pub size: f64,
}

impl From<vmcontainer::Snapshot> for Snapshot {
    fn from(s: vmcontainer::Snapshot) -> Self {
        Snapshot {
            created_at: s.created_at,
            memory: s.memory,
            cpus: s.cpus,
            disk: s.disk,
            path: s.path.map(path),
            // Exact up to 2^53 bytes (8 PiB).
            size: s.size as f64,
            name: s.name,
            source_id: s.source_id,
            source_name: s.source_name,
            image: s.image,
            qemu_version: s.qemu_version,
            machine: s.machine,
            accel: s.accel,
            devices: s.devices,
        }
    }
}

/// Converts a list of core snapshots.
pub fn snapshots(v: Vec<vmcontainer::Snapshot>) -> Vec<Snapshot> {
    v.into_iter().map(Into::into).collect()
}

/// Output of a command run in the guest.
#[napi(object, object_from_js = false)]
pub struct ExecResult {
    /// The command's exit status (255 when SSH itself failed).
    pub exit_code: i32,
    /// Its standard output (UTF-8, invalid bytes replaced).
    pub stdout: String,
    /// Its standard error (UTF-8, invalid bytes replaced).
    pub stderr: String,
}

impl From<vmcontainer::ExecOutput> for ExecResult {
    fn from(o: vmcontainer::ExecOutput) -> Self {
        ExecResult {
            exit_code: o.exit_code,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Receives the serial output of a foreground run.
pub type OutputCallback = ThreadsafeFunction<Buffer, Unknown<'static>, Buffer, NapiStatus, false>;

/// Options of `Manager.run`.
#[napi(object, object_to_js = false)]
pub struct RunOptions {
    /// Container name (1-64 of `[A-Za-z0-9_.-]`); defaults to the ID.
    pub name: Option<String>,
    /// Resolve once the VM is up (it outlives this process) instead of when
    /// it exits. Default `true`, as in every library face.
    pub detach: Option<bool>,
    /// Memory in MB (default 1024).
    pub memory: Option<f64>,
    /// Virtual CPUs (default 1).
    pub cpus: Option<f64>,
    /// Forwarded ports: host port (or `'IP:PORT'` to choose the listen
    /// address) → guest port.
    pub ports: Option<BTreeMap<String, f64>>,
    /// Shared directories (9p): host directory → absolute guest path.
    pub volumes: Option<BTreeMap<String, String>>,
    /// Host port for SSH; default: a free loopback port.
    pub ssh_port: Option<f64>,
    /// Private key `exec` uses.
    pub ssh_key: Option<String>,
    /// Address forwarded ports listen on unless their key names one
    /// (default `127.0.0.1`).
    pub bind_address: Option<String>,
    /// Foreground runs (`detach: false`) only: called with each piece of
    /// serial output. A throw inside it is reported as a process warning,
    /// never fatal.
    #[napi(ts_type = "(chunk: Buffer) => void")]
    pub on_output: Option<OutputCallback>,
}

/// Options of `Manager.runTemplate`: where to look for the template, and
/// those of `run`.
#[napi(object, object_to_js = false)]
pub struct RunTemplateOptions {
    /// Directory whose `.core/linuxkit/` holds workspace templates (default
    /// the process's working directory).
    pub cwd: Option<String>,
    /// As for `run`.
    pub name: Option<String>,
    /// As for `run` (default `true`).
    pub detach: Option<bool>,
    /// As for `run` (default: the template's `MEMORY`, else 1024).
    pub memory: Option<f64>,
    /// As for `run` (default: the template's `CPUS`, else 1).
    pub cpus: Option<f64>,
    /// As for `run`.
    pub ports: Option<BTreeMap<String, f64>>,
    /// As for `run`.
    pub volumes: Option<BTreeMap<String, String>>,
    /// As for `run`.
    pub ssh_port: Option<f64>,
    /// As for `run`.
    pub ssh_key: Option<String>,
    /// As for `run`.
    pub bind_address: Option<String>,
    /// As for `run` (foreground only).
    #[napi(ts_type = "(chunk: Buffer) => void")]
    pub on_output: Option<OutputCallback>,
}

impl RunTemplateOptions {
    /// The template directory and the run options.
    pub fn split(self) -> (Option<String>, RunOptions) {
        (
            self.cwd,
            RunOptions {
                name: self.name,
                detach: self.detach,
                memory: self.memory,
                cpus: self.cpus,
                ports: self.ports,
                volumes: self.volumes,
                ssh_port: self.ssh_port,
                ssh_key: self.ssh_key,
                bind_address: self.bind_address,
                on_output: self.on_output,
            },
        )
    }
}

/// Options of the `Manager` constructor.
#[napi(object, object_to_js = false)]
pub struct ManagerOptions {
    /// Root directory (default `$VMCONTAINER_HOME`, else `~/.core`).
    pub home: Option<String>,
    /// `'qemu'` or `'hyperkit'` (any case); default: the best one available.
    pub hypervisor: Option<String>,
}

/// Options of `Manager.stop`.
#[napi(object, object_to_js = false)]
pub struct StopOptions {
    /// Milliseconds the guest gets to power off before it is signalled
    /// (default 10000).
    pub timeout: Option<f64>,
}

/// Options of `Manager.remove`.
#[napi(object, object_to_js = false)]
pub struct RemoveOptions {
    /// Stop a running container first instead of refusing.
    pub force: Option<bool>,
}

/// Options of `Manager.waitReady`.
#[napi(object, object_to_js = false)]
pub struct WaitOptions {
    /// Milliseconds to wait for the guest's agent or SSH server (default
    /// 120000).
    pub timeout: Option<f64>,
    /// Which answer to wait for (default `auto`: whichever comes first).
    pub transport: Option<Transport>,
}

/// How a call reaches the guest: `auto` (the QEMU guest agent when it
/// answers, else SSH), `agent` or `ssh`.
#[napi(string_enum = "lowercase")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// The agent when it answers, else SSH.
    Auto,
    /// The QEMU Guest Agent only (no SSH key needed).
    Agent,
    /// SSH only.
    Ssh,
}

impl From<Transport> for vmcontainer::Transport {
    fn from(t: Transport) -> Self {
        match t {
            Transport::Auto => vmcontainer::Transport::Auto,
            Transport::Agent => vmcontainer::Transport::Agent,
            Transport::Ssh => vmcontainer::Transport::Ssh,
        }
    }
}

impl From<vmcontainer::Transport> for Transport {
    fn from(t: vmcontainer::Transport) -> Self {
        match t {
            vmcontainer::Transport::Auto => Transport::Auto,
            vmcontainer::Transport::Agent => Transport::Agent,
            vmcontainer::Transport::Ssh => Transport::Ssh,
        }
    }
}

/// Options of `Manager.exec`.
#[napi(object, object_to_js = false)]
pub struct ExecOptions {
    /// Bytes for the command's standard input (closed after them).
    pub input: Option<Buffer>,
    /// How to reach the guest (default `auto`).
    pub transport: Option<Transport>,
}

/// Options of `Manager.copyTo` and `Manager.copyFrom`.
#[napi(object, object_to_js = false)]
pub struct CopyOptions {
    /// Keep owners (uid/gid) too; modes and times are always kept.
    pub archive: Option<bool>,
    /// How to reach the guest (default `auto`).
    pub transport: Option<Transport>,
}

/// The core's copy options for what JS passed (defaults when nothing).
pub fn copy_options(o: Option<CopyOptions>) -> vmcontainer::CopyOptions {
    o.map(|o| vmcontainer::CopyOptions {
        archive: o.archive.unwrap_or(false),
        transport: o.transport.map(Into::into).unwrap_or_default(),
    })
    .unwrap_or_default()
}

/// Where templates are looked up besides the built-ins.
#[napi(object, object_to_js = false)]
pub struct TemplateOptions {
    /// Root whose `linuxkit/` holds user templates (default
    /// `$VMCONTAINER_HOME`, else `~/.core`).
    pub home: Option<String>,
    /// Directory whose `.core/linuxkit/` holds workspace templates (default
    /// the process's working directory).
    pub cwd: Option<String>,
}

/// A template as listed.
#[napi(object, object_from_js = false)]
pub struct TemplateInfo {
    /// Lookup name.
    pub name: String,
    /// First non-empty `#` comment line, else "User-defined template".
    pub description: String,
    /// File it was read from; absent for built-ins.
    pub path: Option<String>,
    /// Whether it is embedded in the library.
    pub builtin: bool,
}

impl From<vmcontainer::templates::Template> for TemplateInfo {
    fn from(t: vmcontainer::templates::Template) -> Self {
        TemplateInfo {
            name: t.name,
            description: t.description,
            path: t.path.map(path),
            builtin: t.builtin,
        }
    }
}

/// A template with its raw content.
#[napi(object, object_from_js = false)]
pub struct TemplateContent {
    /// Lookup name.
    pub name: String,
    /// First non-empty `#` comment line, else "User-defined template".
    pub description: String,
    /// File it was read from; absent for built-ins.
    pub path: Option<String>,
    /// Whether it is embedded in the library.
    pub builtin: bool,
    /// The YAML, variables not substituted.
    pub content: String,
}

impl From<(vmcontainer::templates::Template, String)> for TemplateContent {
    fn from((t, content): (vmcontainer::templates::Template, String)) -> Self {
        let t = TemplateInfo::from(t);
        TemplateContent {
            name: t.name,
            description: t.description,
            path: t.path,
            builtin: t.builtin,
            content,
        }
    }
}

/// The variables a template uses.
#[napi(object, object_from_js = false)]
pub struct TemplateVariables {
    /// Names used as `${NAME}`, sorted.
    pub required: Vec<String>,
    /// Names used only as `${NAME:-default}`, with their defaults.
    pub optional: BTreeMap<String, String>,
}
