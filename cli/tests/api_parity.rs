//! Every CLI name in `api/operations.toml` is a command (and its flags)
//! that `vmcontainer ... --help` shows.

#[path = "../../api/operations.rs"]
mod operations;

use std::process::Command;

/// The help text of `vmcontainer <path> --help`.
fn help(path: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vmcontainer"))
        .args(path)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vmcontainer {} --help: {}",
        path.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_listed_cli_command_and_flag_exists() {
    let ops = operations::load();
    let mut checked = 0;
    for op in &ops.ops {
        for name in op.names("cli") {
            let words: Vec<&str> = name.split_whitespace().collect();
            let (flags, path): (Vec<&str>, Vec<&str>) =
                words.iter().partition(|w| w.starts_with('-'));
            // The command exists: its parent's help lists it, and its own
            // help answers.
            if let Some((last, parent)) = path.split_last() {
                let listing = help(parent);
                assert!(
                    listing
                        .lines()
                        .any(|l| l.split_whitespace().next() == Some(last)),
                    "[op.{}]: `vmcontainer {} --help` does not list {last}",
                    op.name,
                    parent.join(" ")
                );
            }
            let text = help(&path);
            for flag in flags {
                assert!(
                    text.split(|c: char| c.is_whitespace() || c == ',' || c == '=')
                        .any(|w| w == flag),
                    "[op.{}]: `vmcontainer {} --help` has no {flag}",
                    op.name,
                    path.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} CLI names checked");
}
