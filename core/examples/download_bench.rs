//! Download throughput of the dev-image downloader against `curl`, both
//! fetching the same 1 GiB file from a loopback HTTP server in this
//! process.
//!
//! ```text
//! cargo run --release -p vmcontainer --example download_bench [-- SIZE_MIB [RUNS]]
//! ```
//!
//! Ours streams with sha256 computed on the fly, writes a partial file,
//! fsyncs, verifies and renames. `curl -o` only writes (no checksum, no
//! fsync), so the figures also show curl followed by an fsync (the same
//! durability) and then `sha256sum` (the checksum as a second pass, which
//! is what a careful shell script would do).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use vmcontainer::sources::download::{fetch, Request};

/// Serves `body` for any GET, one request per connection.
fn serve(body: Arc<Vec<u8>>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let body = body.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let mut w = conn;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                if w.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for chunk in body.chunks(1 << 20) {
                    if w.write_all(chunk).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / (1 << 20) as f64 / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let size_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let size = size_mib << 20;

    // Incompressible-looking data (xorshift), so nothing along the way can
    // take a shortcut.
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let sha: String = Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let port = serve(Arc::new(data));
    let url = format!("http://127.0.0.1:{port}/core-devops-linux-amd64.qcow2");
    let dir = tempfile::Builder::new()
        .prefix("vmc-bench")
        .tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/tmp".into()))
        .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = vmcontainer::sources::http_client().unwrap();
    println!("{size_mib} MiB from 127.0.0.1, {runs} runs each, medians:");

    let (mut ours, mut curl, mut curl_sync, mut curl_sum) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let target = dir.path().join("core-devops-linux-amd64.qcow2");
        let _ = std::fs::remove_file(&target);
        let req = Request {
            url: &url,
            headers: &[],
            bearer: None,
            file_name: "core-devops-linux-amd64.qcow2",
            sha256: &sha,
            size: Some(size as u64),
        };
        let t = Instant::now();
        let got = rt
            .block_on(fetch(&client, &req, dir.path(), &mut |_, _| {}))
            .expect("download");
        ours.push(t.elapsed());
        assert_eq!(got.size as usize, size);
        std::fs::remove_file(&target).unwrap();

        let out = dir.path().join("curl.out");
        let t = Instant::now();
        let st = Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&out)
            .arg(&url)
            .status()
            .expect("run curl");
        curl.push(t.elapsed());
        assert!(st.success());
        let t = Instant::now();
        std::fs::File::open(&out).unwrap().sync_all().unwrap();
        curl_sync.push(*curl.last().unwrap() + t.elapsed());
        let t = Instant::now();
        let sum = Command::new("sha256sum").arg(&out).output().unwrap();
        curl_sum.push(*curl_sync.last().unwrap() + t.elapsed());
        assert!(String::from_utf8_lossy(&sum.stdout).starts_with(&sha));
        std::fs::remove_file(&out).unwrap();
    }
    let (o, c, cy, cs) = (
        median(ours),
        median(curl),
        median(curl_sync),
        median(curl_sum),
    );
    println!(
        "  vmcontainer (sha256 while streaming, fsync): {:>8.1} MiB/s  ({:.2}s)",
        mib_per_s(size, o),
        o.as_secs_f64()
    );
    println!(
        "  curl -o (no checksum):                       {:>8.1} MiB/s  ({:.2}s)",
        mib_per_s(size, c),
        c.as_secs_f64()
    );
    println!(
        "  curl -o, then fsync:                         {:>8.1} MiB/s  ({:.2}s)",
        mib_per_s(size, cy),
        cy.as_secs_f64()
    );
    println!(
        "  curl -o, fsync, then sha256sum:              {:>8.1} MiB/s  ({:.2}s)",
        mib_per_s(size, cs),
        cs.as_secs_f64()
    );
    println!(
        "  throughput ratio vmcontainer/curl: {:.2} (plain), {:.2} (curl+fsync), {:.2} (curl+fsync+sha256sum)",
        c.as_secs_f64() / o.as_secs_f64(),
        cy.as_secs_f64() / o.as_secs_f64(),
        cs.as_secs_f64() / o.as_secs_f64()
    );
}
