//! The accelerator probe boots real guest code under QEMU and never hangs.

use std::time::{Duration, Instant};

use vmcontainer::hypervisor::{probe_accel, Accel, QemuHypervisor};

fn qemu() -> std::path::PathBuf {
    QemuHypervisor::new()
        .binary()
        .expect("qemu-system binary must be installed for this test")
        .to_path_buf()
}

#[test]
fn tcg_probe_runs_guest_code_and_exits() {
    let took = probe_accel(&qemu(), Accel::Tcg, Duration::from_secs(30))
        .expect("TCG must boot the probe disk");
    assert!(took < Duration::from_secs(30));
}

#[test]
fn broken_kvm_is_detected_within_the_deadline() {
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap();
    let has_virt = flags.split_whitespace().any(|f| f == "vmx" || f == "svm");
    let started = Instant::now();
    let tcg = probe_accel(&qemu(), Accel::Tcg, Duration::from_secs(30)).unwrap();
    let res = probe_accel(&qemu(), Accel::Kvm, Duration::from_secs(2) + tcg * 2);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "probe hung: {:?}",
        started.elapsed()
    );
    if !has_virt {
        // This build machine: /dev/kvm exists but cannot run guests.
        assert!(res.is_err(), "KVM probe passed on a host without vmx/svm");
    }
}

#[test]
fn forced_accelerator_is_reported() {
    std::env::set_var("VMCONTAINER_ACCEL", "tcg");
    let c = vmcontainer::hypervisor::detect_accel(&qemu()).unwrap();
    assert_eq!(c.accel, Accel::Tcg);
    assert!(c.reason.contains("VMCONTAINER_ACCEL"));
    std::env::set_var("VMCONTAINER_ACCEL", "bogus");
    let e = vmcontainer::hypervisor::detect_accel(&qemu()).unwrap_err();
    assert!(e.to_string().contains("bogus"));
    std::env::remove_var("VMCONTAINER_ACCEL");
}
