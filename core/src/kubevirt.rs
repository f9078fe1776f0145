//! Cluster hand-off: a container (or an image) as a KubeVirt
//! `VirtualMachine` (`kubevirt.io/v1`) plus a `Service` for its forwarded
//! ports, as multi-document YAML for `kubectl apply -f`.
//!
//! The VM boots the containerDisk that `push --containerdisk` made of the
//! same image (named with `--image-ref`, or remembered from that push): a
//! disk image as a virtio disk, an ISO as a SATA CD-ROM, a LinuxKit
//! kernel+initrd through KubeVirt's `kernelBoot` with the image's command
//! line. Memory and vCPUs are the container's. The pod network uses
//! masquerade (every port reaches the guest); the `Service` maps each
//! forwarded host port to its guest port, and port 22 when the container
//! was reached over SSH. What cannot cross over is said in comments and
//! `vmcontainer/*` annotations: 9p volumes (host directories do not exist
//! in a cluster), and the SSH key, which stays with the user.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::image::ImageFormat;

/// Everything the export needs, gathered from a container or an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// `metadata.name` (a DNS-1123 label; see [`dns_label`]).
    pub name: String,
    /// Where it came from (`container 0a1b2c3d`, `image /x/y.qcow2`).
    pub source: String,
    /// Memory in MiB.
    pub memory_mb: u32,
    /// vCPUs.
    pub cpus: u32,
    /// Format of the image in the containerDisk.
    pub format: ImageFormat,
    /// The containerDisk image reference.
    pub image_ref: String,
    /// For kernel+initrd: paths in the image and the command line.
    pub kernel: Option<KernelBoot>,
    /// Forwarded ports, host → guest.
    pub ports: BTreeMap<u16, u16>,
    /// Shared directories, host → guest (noted, not exported).
    pub volumes: BTreeMap<String, String>,
    /// The private key `exec` used, when there was one (noted).
    pub ssh_key: Option<String>,
}

/// KubeVirt `kernelBoot` details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBoot {
    /// Absolute path of the kernel in the containerDisk image.
    pub kernel_path: String,
    /// Absolute path of the initrd.
    pub initrd_path: String,
    /// Kernel command line.
    pub cmdline: String,
}

/// `s` made a valid DNS-1123 label (lowercase alphanumerics and `-`, at
/// most 63, alphanumeric at both ends); `fallback` when nothing is left.
pub fn dns_label(s: &str, fallback: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() {
                c
            } else {
                '-'
            }
        })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-');
    let out = &out[..out.len().min(63)];
    let out = out.trim_end_matches('-');
    if out.is_empty() {
        fallback.to_string()
    } else {
        out.to_string()
    }
}

/// The `VirtualMachine` object.
pub fn virtual_machine(spec: &ExportSpec) -> Value {
    let memory = format!("{}Mi", spec.memory_mb);
    let labels = json!({ "kubevirt.io/domain": spec.name, "app.kubernetes.io/name": spec.name });
    let mut annotations = BTreeMap::from([("vmcontainer/source".to_string(), spec.source.clone())]);
    if !spec.volumes.is_empty() {
        annotations.insert(
            "vmcontainer/volumes".to_string(),
            spec.volumes
                .iter()
                .map(|(h, g)| format!("{h}:{g}"))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    if let Some(k) = &spec.ssh_key {
        annotations.insert("vmcontainer/ssh-key".to_string(), k.clone());
    }
    let mut domain = json!({
        "cpu": { "cores": spec.cpus.max(1), "sockets": 1, "threads": 1 },
        "memory": { "guest": memory },
        "resources": { "requests": { "memory": memory } },
        "devices": {
            "interfaces": [{ "name": "default", "masquerade": {} }],
        },
    });
    let mut volumes = Vec::new();
    match &spec.kernel {
        Some(k) => {
            domain["firmware"] = json!({
                "kernelBoot": {
                    "kernelArgs": k.cmdline,
                    "container": {
                        "image": spec.image_ref,
                        "kernelPath": k.kernel_path,
                        "initrdPath": k.initrd_path,
                        "imagePullPolicy": "IfNotPresent",
                    },
                },
            });
        }
        None => {
            let disk = if spec.format == ImageFormat::Iso {
                json!({ "name": "containerdisk", "bootOrder": 1, "cdrom": { "bus": "sata", "readonly": true } })
            } else {
                json!({ "name": "containerdisk", "bootOrder": 1, "disk": { "bus": "virtio" } })
            };
            domain["devices"]["disks"] = json!([disk]);
            volumes.push(json!({
                "name": "containerdisk",
                "containerDisk": { "image": spec.image_ref, "imagePullPolicy": "IfNotPresent" },
            }));
        }
    }
    let mut vmi = json!({
        "architecture": crate::registry::media::go_arch(),
        "domain": domain,
        "networks": [{ "name": "default", "pod": {} }],
        "terminationGracePeriodSeconds": 30,
    });
    if !volumes.is_empty() {
        vmi["volumes"] = Value::Array(volumes);
    }
    json!({
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {
            "name": spec.name,
            "labels": { "app.kubernetes.io/managed-by": "vmcontainer" },
            "annotations": annotations,
        },
        "spec": {
            "runStrategy": "Always",
            "template": {
                "metadata": { "labels": labels },
                "spec": vmi,
            },
        },
    })
}

/// The `Service` for the forwarded ports (and SSH), or `None` when the
/// container forwarded nothing.
pub fn service(spec: &ExportSpec) -> Option<Value> {
    let mut ports: Vec<Value> = spec
        .ports
        .iter()
        .map(|(host, guest)| {
            json!({ "name": format!("tcp-{host}"), "port": host, "targetPort": guest, "protocol": "TCP" })
        })
        .collect();
    if spec.ssh_key.is_some() && !spec.ports.values().any(|g| *g == 22) {
        ports.push(json!({ "name": "ssh", "port": 22, "targetPort": 22, "protocol": "TCP" }));
    }
    if ports.is_empty() {
        return None;
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.name,
            "labels": { "app.kubernetes.io/managed-by": "vmcontainer" },
        },
        "spec": {
            "type": "ClusterIP",
            "selector": { "kubevirt.io/domain": spec.name },
            "ports": ports,
        },
    }))
}

/// The whole export: comments saying what was and was not carried over,
/// then the `VirtualMachine` and (when there are ports) the `Service`, as
/// YAML documents.
pub fn render(spec: &ExportSpec) -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    out.push_str(&format!(
        "# KubeVirt VirtualMachine for {}, made by `vmcontainer export --kubevirt`.\n",
        one_line(&spec.source)
    ));
    out.push_str(&format!(
        "# Boots containerDisk {} ({}); apply with `kubectl apply -f FILE` on a cluster running KubeVirt.\n",
        one_line(&spec.image_ref),
        spec.format
    ));
    if spec.ports.is_empty() {
        out.push_str("# Ports: none were forwarded; masquerade networking still lets the pod reach every guest port.\n");
    } else {
        for (h, g) in &spec.ports {
            out.push_str(&format!(
                "# Port: host {h} -> guest {g} becomes Service port {h} -> targetPort {g} (ClusterIP; use `kubectl port-forward svc/{}` {h}:{h} or a LoadBalancer to reach it from outside).\n",
                spec.name
            ));
        }
    }
    for (h, g) in &spec.volumes {
        out.push_str(&format!(
            "# Volume: host directory {} was shared at {} over 9p; a cluster has no such directory, so it is not exported (use a PersistentVolumeClaim or a virtiofs filesystem).\n",
            one_line(h),
            one_line(g)
        ));
    }
    match &spec.ssh_key {
        Some(k) => out.push_str(&format!(
            "# SSH: the guest's authorized key is the one in the image (exec used {}); reach it with `virtctl ssh -i KEY root@vm/{}` or through the Service's port 22. No cloud-init is added: LinuxKit guests configure themselves.\n",
            one_line(k),
            spec.name
        )),
        None => out.push_str(&format!(
            "# SSH: the container used no SSH key; use `virtctl console {}` for the serial console.\n",
            spec.name
        )),
    }
    out.push_str("---\n");
    out.push_str(&serde_norway::to_string(&virtual_machine(spec))?);
    if let Some(svc) = service(spec) {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&svc)?);
    }
    Ok(out)
}

/// A value fit for a comment line: no line breaks.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ExportSpec {
        ExportSpec {
            name: "web".into(),
            source: "container 0a1b2c3d".into(),
            memory_mb: 512,
            cpus: 2,
            format: ImageFormat::Qcow2,
            image_ref: "localhost:5000/vm/disk:1".into(),
            kernel: None,
            ports: BTreeMap::from([(8080, 80)]),
            volumes: BTreeMap::from([("/home/u/src".into(), "/mnt/src".into())]),
            ssh_key: Some("/home/u/.ssh/id".into()),
        }
    }

    #[test]
    fn labels_are_dns_1123() {
        assert_eq!(dns_label("My_VM.1", "x"), "my-vm-1");
        assert_eq!(dns_label("--a--b--", "x"), "a-b");
        assert_eq!(dns_label("___", "vm-1"), "vm-1");
        let l = dns_label(&"a".repeat(100), "x");
        assert_eq!(l.len(), 63);
    }

    #[test]
    fn vm_and_service_carry_the_container() {
        let vm = virtual_machine(&spec());
        let t = &vm["spec"]["template"];
        assert_eq!(t["spec"]["domain"]["cpu"]["cores"], 2);
        assert_eq!(
            t["spec"]["domain"]["resources"]["requests"]["memory"],
            "512Mi"
        );
        assert_eq!(
            t["spec"]["volumes"][0]["containerDisk"]["image"],
            "localhost:5000/vm/disk:1"
        );
        assert_eq!(
            t["spec"]["domain"]["devices"]["disks"][0]["disk"]["bus"],
            "virtio"
        );
        assert_eq!(
            vm["metadata"]["annotations"]["vmcontainer/volumes"],
            "/home/u/src:/mnt/src"
        );
        let svc = service(&spec()).unwrap();
        assert_eq!(
            svc["spec"]["selector"]["kubevirt.io/domain"],
            t["metadata"]["labels"]["kubevirt.io/domain"]
        );
        let ports = svc["spec"]["ports"].as_array().unwrap();
        assert_eq!(ports[0]["port"], 8080);
        assert_eq!(ports[0]["targetPort"], 80);
        assert_eq!(ports[1]["name"], "ssh");
        let mut none = spec();
        none.ports.clear();
        none.ssh_key = None;
        assert!(service(&none).is_none());
    }

    #[test]
    fn iso_and_kernel_boot() {
        let mut s = spec();
        s.format = ImageFormat::Iso;
        let vm = virtual_machine(&s);
        assert_eq!(
            vm["spec"]["template"]["spec"]["domain"]["devices"]["disks"][0]["cdrom"]["bus"],
            "sata"
        );
        s.format = ImageFormat::KernelInitrd;
        s.kernel = Some(KernelBoot {
            kernel_path: "/boot/lk-kernel".into(),
            initrd_path: "/boot/lk-initrd.img".into(),
            cmdline: "console=ttyS0".into(),
        });
        let vm = virtual_machine(&s);
        let fw = &vm["spec"]["template"]["spec"]["domain"]["firmware"]["kernelBoot"];
        assert_eq!(fw["kernelArgs"], "console=ttyS0");
        assert_eq!(fw["container"]["kernelPath"], "/boot/lk-kernel");
        assert!(vm["spec"]["template"]["spec"].get("volumes").is_none());
    }

    #[test]
    fn render_is_multi_document_yaml_with_notes() {
        let mut s = spec();
        s.source = "container x\n---\nkind: Evil".into();
        let y = render(&s).unwrap();
        assert!(y.contains("# Volume: host directory /home/u/src"), "{y}");
        let docs: Vec<serde_json::Value> = y
            .split("\n---\n")
            .skip(1)
            .map(|d| serde_norway::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 2, "{y}");
        assert_eq!(docs[0]["kind"], "VirtualMachine");
        assert_eq!(docs[1]["kind"], "Service");
        // A hostile source string stays inside its comment and its value.
        assert_eq!(
            docs[0]["metadata"]["annotations"]["vmcontainer/source"],
            "container x\n---\nkind: Evil"
        );
    }
}
