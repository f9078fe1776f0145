struct Instant(std::time::Duration);
impl Instant {
    fn now() -> Self {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Instant(std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    fn elapsed(&self) -> std::time::Duration { Instant::now().0 - self.0 }
}
use std::collections::BTreeMap;
#[allow(dead_code)]
#[derive(serde::Deserialize)]
struct NoFlat {
    id: String,
    #[serde(default)] name: String,
    image: String,
    status: vmcontainer::Status,
    #[serde(default)] pid: i32,
    started_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)] ports: BTreeMap<u16, u16>,
    #[serde(default)] memory: u32,
    #[serde(default)] cpus: u32,
    #[serde(default)] ssh_port: u16,
    #[serde(default)] ssh_key: Option<String>,
    #[serde(default)] volumes: BTreeMap<String, String>,
    #[serde(default)] hypervisor: Option<String>,
    #[serde(default)] accel: Option<String>,
    #[serde(default)] format: Option<vmcontainer::ImageFormat>,
    #[serde(default)] ssh_port_auto: bool,
    #[serde(default)] stopped_at: Option<chrono::DateTime<chrono::Utc>>,
}
#[derive(serde::Deserialize)]
struct F<T> { containers: Vec<BTreeMap<String, T>> }
fn main() {
    let bytes = std::fs::read("/tmp/i9base/h/containers.json").unwrap();
    for _ in 0..3 {
        let t = Instant::now();
        let d = vmcontainer::json_keys::find_duplicate_key(&bytes);
        let a = t.elapsed();
        let t = Instant::now();
        let s = vmcontainer::state::StateFile::from_json(&bytes).unwrap();
        let b = t.elapsed();
        let t = Instant::now();
        let j = s.to_json();
        let c = t.elapsed();
        let t = Instant::now();
        let mut v: Vec<_> = s.containers.values().cloned().collect();
        v.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        let f = t.elapsed();
        let t = Instant::now();
        let out = serde_json::to_vec_pretty(&v).unwrap();
        let g = t.elapsed();
        let t = Instant::now();
        drop(s);
        drop(v);
        let e = t.elapsed();
        println!("dupwalk {a:?} from_json(total) {b:?} to_json {c:?} clone+sort {f:?} ps-json {g:?} drop {e:?} {} {} {:?}", j.len(), out.len(), d.is_some());
    }
}
