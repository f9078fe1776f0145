//! `.core/test.yaml` in a project:
//!
//! ```yaml
//! version: 1
//! command: composer test          # what `dev test` runs by default
//! commands:                       # `dev test --name unit`
//!   - name: unit
//!     run: vendor/bin/phpunit --testsuite unit
//! env:                            # set for every test command
//!   APP_ENV: testing
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestConfig {
    /// Schema version.
    pub version: u32,
    /// Default test command (a shell command line).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub command: String,
    /// Named commands.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<TestCommand>,
    /// Environment for every test command.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// A named command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TestCommand {
    /// Its name.
    pub name: String,
    /// The shell command line.
    pub run: String,
}

impl TestConfig {
    /// The command named `name`.
    pub fn named(&self, name: &str) -> Option<&str> {
        self.commands
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.run.as_str())
    }
}

/// `<dir>/.core/test.yaml`.
pub fn test_config_path(dir: &Path) -> PathBuf {
    dir.join(".core").join("test.yaml")
}

/// Loads `<dir>/.core/test.yaml`: `Ok(None)` when there is none, an error
/// naming the file and line when it is invalid.
pub fn load_test_config(dir: &Path) -> Result<Option<TestConfig>> {
    let path = test_config_path(dir);
    match super::config::read_yaml_file(&path)? {
        Some(text) => super::config::parse_yaml(&path, &text).map(Some),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_commands_and_env() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(load_test_config(d.path()).unwrap(), None);
        std::fs::create_dir(d.path().join(".core")).unwrap();
        std::fs::write(
            test_config_path(d.path()),
            "version: 1\ncommand: make test\ncommands:\n  - name: unit\n    run: make unit\nenv:\n  APP_ENV: testing\n",
        )
        .unwrap();
        let c = load_test_config(d.path()).unwrap().unwrap();
        assert_eq!(c.command, "make test");
        assert_eq!(c.named("unit"), Some("make unit"));
        assert_eq!(c.named("e2e"), None);
        assert_eq!(c.env["APP_ENV"], "testing");
    }

    #[test]
    fn invalid_file_is_named_with_its_line() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".core")).unwrap();
        std::fs::write(test_config_path(d.path()), "command: x\nenv: [a\n").unwrap();
        let e = load_test_config(d.path()).unwrap_err().to_string();
        assert!(e.contains(".core/test.yaml line"), "{e}");
    }
}
