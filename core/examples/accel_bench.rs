//! What the per-boot accelerator cache saves each `run`.
//!
//! ```text
//! cargo run --release -p vmcontainer --example accel_bench -- [RUNS]
//! ```
//!
//! Measures, with this host's QEMU: the TCG reference probe (one tiny VM
//! boot; a host with vmx/svm runs it and then a KVM probe on every
//! uncached detection), a cache miss (key + probe stand-in + write) and a
//! cache hit (key + read), and prints one JSON line with medians in
//! microseconds and the probe-to-hit ratio.

use std::time::{Duration, Instant};

use vmcontainer::hypervisor::accel_cache::{cached, ProbeKey};
use vmcontainer::hypervisor::{probe_accel, Accel, AccelChoice, QemuHypervisor};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map_or(5, |r| r.parse().expect("RUNS"));
    let q = QemuHypervisor::new();
    let qemu = q
        .binary()
        .expect("qemu-system binary on PATH")
        .to_path_buf();
    let probe_us = median(
        (0..runs)
            .map(|_| {
                probe_accel(&qemu, Accel::Tcg, Duration::from_secs(30))
                    .expect("TCG probe")
                    .as_secs_f64()
                    * 1e6
            })
            .collect(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let choice = AccelChoice {
        accel: Accel::Tcg,
        reason: "bench".into(),
    };
    let miss_us = median(
        (0..200)
            .map(|i| {
                let t = Instant::now();
                let mut key = ProbeKey::for_binary(&qemu).expect("boot id");
                key.mtime_ns += i; // a new key each time: always a miss
                cached(dir.path(), &key, || choice.clone());
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    let key = ProbeKey::for_binary(&qemu).expect("boot id");
    cached(dir.path(), &key, || choice.clone());
    let hit_us = median(
        (0..200)
            .map(|_| {
                let t = Instant::now();
                let key = ProbeKey::for_binary(&qemu).expect("boot id");
                cached(dir.path(), &key, || unreachable!("stored above"));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect(),
    );
    println!(
        "{{\"tcg_probe_us\":{probe_us:.0},\"cache_miss_bookkeeping_us\":{miss_us:.1},\"cache_hit_us\":{hit_us:.1},\"probe_over_hit\":{:.0}}}",
        probe_us / hit_us
    );
}
