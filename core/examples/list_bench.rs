//! Time of `list()` on an existing root directory, as the baseline the
//! language bindings' benchmarks compare against.
//!
//! ```text
//! cargo run --release -p vmcontainer --example list_bench -- HOME [RUNS]
//! ```
//!
//! HOME is a vmcontainer root (its `containers.json` is read, never
//! written unless a "running" record must be reconciled). Prints one JSON
//! line: `{"containers":N,"runs":R,"median_us":..,"mean_us":..,"min_us":..}`.

use std::path::PathBuf;
use std::time::Instant;

use vmcontainer::blocking::Manager;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(home) = args.next().map(PathBuf::from) else {
        eprintln!("usage: list_bench HOME [RUNS]");
        std::process::exit(2);
    };
    let runs: usize = args.next().map_or(200, |r| r.parse().expect("RUNS"));
    let m = Manager::new(Some(&home), None).expect("manager");
    // Warm the page cache and the allocator.
    let n = m.list().expect("list").len();
    for _ in 0..10 {
        m.list().expect("list");
    }
    let mut us: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let v = m.list().expect("list");
            assert_eq!(v.len(), n);
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    let mean = us.iter().sum::<f64>() / us.len() as f64;
    println!(
        "{{\"containers\":{n},\"runs\":{runs},\"median_us\":{:.1},\"mean_us\":{mean:.1},\"min_us\":{:.1}}}",
        us[us.len() / 2],
        us[0]
    );
}
