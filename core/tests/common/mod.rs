//! Helpers shared by the core's real-VM test binaries.

use std::path::PathBuf;

/// The test guest (tests/guest/build.sh, or `VMCONTAINER_TEST_GUEST`).
pub fn guest() -> PathBuf {
    if let Some(d) = std::env::var_os("VMCONTAINER_TEST_GUEST") {
        return d.into();
    }
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let out = std::process::Command::new("bash")
        .arg(repo.join("tests/guest/build.sh"))
        .output()
        .expect("run tests/guest/build.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .into()
}
