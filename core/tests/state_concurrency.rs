//! Several processes mutating one state file at once lose nothing: each
//! worker is this test binary re-executed, inserting its own containers
//! under the state lock while the others do the same.

use std::process::Command;

use vmcontainer::state::{StateError, StateStore};
use vmcontainer::Container;

const WORKERS: usize = 6;
const PER_WORKER: usize = 40;

fn record(id: &str) -> Container {
    serde_json::from_value(serde_json::json!({
        "id": id, "name": id, "image": "/img.iso", "status": "stopped",
        "pid": 0, "started_at": "2025-01-01T00:00:00Z"
    }))
    .unwrap()
}

/// Worker body, run only when re-executed by the test below.
#[test]
#[ignore = "helper process for concurrent_processes_lose_no_update"]
fn state_worker() {
    let path = std::env::var("VMC_STATE_PATH").expect("run by the concurrency test");
    let worker: usize = std::env::var("VMC_WORKER").unwrap().parse().unwrap();
    let store = StateStore::new(path);
    for i in 0..PER_WORKER {
        let id = format!("{worker:02x}{i:06x}");
        store
            .update(|s| {
                s.containers.insert(id.clone(), record(&id));
                Ok::<_, StateError>(())
            })
            .unwrap();
    }
}

#[test]
fn concurrent_processes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("containers.json");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WORKERS)
        .map(|w| {
            Command::new(&exe)
                .args(["--ignored", "--exact", "state_worker", "--quiet"])
                .env("VMC_STATE_PATH", &path)
                .env("VMC_WORKER", w.to_string())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let st = StateStore::new(&path).load().unwrap();
    assert_eq!(st.containers.len(), WORKERS * PER_WORKER);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".containers.json."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
