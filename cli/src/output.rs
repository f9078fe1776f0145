//! Tables, JSON and spinners.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vmcontainer::templates::Template;
use vmcontainer::{Container, Snapshot, Status};

/// Prints `v` as pretty JSON, streamed (a listing of 100,000 containers
/// is tens of MB: no second copy of it in memory).
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    serde_json::to_writer_pretty(&mut out, v)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// A one-line warning on stderr.
pub fn warn(msg: &str) {
    eprintln!("vmcontainer: warning: {}", msg.replace('\n', " "));
}

fn ago(c: &Container) -> String {
    since(c.started_at)
}

fn since(t: chrono::DateTime<chrono::Utc>) -> String {
    let secs = (chrono::Utc::now() - t).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// `ps` output.
pub fn ps_table(list: &[Container]) {
    println!(
        "{:<10} {:<16} {:<8} {:<8} {:<6} {:<18} IMAGE",
        "ID", "NAME", "STATUS", "UP", "SSH", "PORTS"
    );
    for c in list {
        // A mapping that listens beyond loopback says where.
        let ports = c
            .port_forwards()
            .iter()
            .map(|(bind, h, g)| {
                if bind.is_loopback() {
                    format!("{h}->{g}")
                } else {
                    format!("{bind}:{h}->{g}")
                }
            })
            .collect::<Vec<_>>()
            .join(",");
        let up = if c.status == Status::Running {
            ago(c)
        } else {
            "-".into()
        };
        println!(
            "{:<10} {:<16} {:<8} {:<8} {:<6} {:<18} {}",
            c.id, c.name, c.status, up, c.ssh_port, ports, c.image
        );
    }
}

/// `snapshot ls` output.
pub fn snapshots_table(list: &[Snapshot]) {
    println!(
        "{:<20} {:<18} {:<8} {:<5} {:<9} {:<8} IMAGE",
        "NAME", "SOURCE", "MEMORY", "CPUS", "SIZE", "CREATED"
    );
    for s in list {
        println!(
            "{:<20} {:<18} {:<8} {:<5} {:<9} {:<8} {}",
            s.name,
            format!("{} ({})", s.source_id, s.source_name),
            format!("{}M", s.memory),
            s.cpus,
            format!("{:.1}M", s.size as f64 / 1048576.0),
            format!("{} ago", since(s.created_at)),
            s.image
        );
    }
}

/// `templates` output.
pub fn templates_table(list: &[Template]) {
    println!("{:<20} DESCRIPTION", "NAME");
    for t in list {
        println!("{:<20} {}", t.name, t.description);
    }
}

/// A spinner on stderr for long waits; invisible when stderr is not a
/// terminal.
pub fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// A progress bar with rate and ETA on stderr for a transfer (hidden when
/// stderr is not a terminal).
#[cfg(any(feature = "devenv", feature = "registry"))]
pub fn transfer_bar(msg: &'static str) -> ProgressBar {
    // No length until the server says; the line fits 80 columns.
    let pb = ProgressBar::no_length();
    pb.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:20}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

/// A `(done, total)` callback that moves `pb`.
#[cfg(feature = "registry")]
pub fn bar_progress(pb: &ProgressBar) -> impl FnMut(u64, Option<u64>) + Send + 'static {
    let bar = pb.clone();
    move |done: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    }
}
