//! Tables, JSON and spinners.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use vmcontainer::templates::Template;
use vmcontainer::{Container, Status};

/// Prints `v` as pretty JSON.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn ago(c: &Container) -> String {
    let secs = (chrono::Utc::now() - c.started_at).num_seconds().max(0);
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
        let ports = c
            .ports
            .iter()
            .map(|(h, g)| format!("{h}->{g}"))
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
pub fn bar_progress(pb: &ProgressBar) -> impl FnMut(u64, Option<u64>) + Send + 'static {
    let bar = pb.clone();
    move |done: u64, total: Option<u64>| {
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    }
}
