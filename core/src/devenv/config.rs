//! `config.yaml` in go-container's schema:
//!
//! ```yaml
//! version: 1
//! images:
//!   source: auto          # auto (GitHub, then registry, then CDN) | github | registry | cdn
//!   github:
//!     repo: host-uk/core-images
//!   registry:
//!     image: ""           # OCI reference; `source: registry` defaults it
//!                         # to host-uk/core-devops:latest (Docker Hub)
//!     plain_http: false   # vmcontainer only: HTTP to a non-loopback registry
//!   cdn:
//!     url: https://images.example.com/core
//! dev:                    # vmcontainer only; go-container ignores it
//!   memory: 4096          # MB
//!   cpus: 2
//!   ssh_key: ~/.ssh/id_ed25519
//! ```
//!
//! Every key is optional; a missing file means all defaults. Unknown keys
//! are ignored, so a file written for a newer go-container still loads.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::DevenvError;
use crate::error::{Error, Result};

/// GitHub repository whose releases hold the dev images, by default.
pub const DEFAULT_GITHUB_REPO: &str = "host-uk/core-images";
/// Default VM memory in MB.
pub const DEFAULT_MEMORY_MB: u32 = 4096;
/// Default vCPU count.
pub const DEFAULT_CPUS: u32 = 2;

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Schema version (1).
    pub version: u32,
    /// Where images come from.
    pub images: ImagesConfig,
    /// Settings of the dev VM (vmcontainer's addition).
    pub dev: DevConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            version: 1,
            images: ImagesConfig::default(),
            dev: DevConfig::default(),
        }
    }
}

/// `images:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImagesConfig {
    /// Which source to use.
    pub source: SourceSelection,
    /// `images.github`.
    pub github: GitHubConfig,
    /// `images.registry`: the VM image the `registry` source pulls.
    pub registry: RegistryConfig,
    /// `images.cdn`.
    pub cdn: CdnConfig,
}

impl Default for ImagesConfig {
    fn default() -> Self {
        ImagesConfig {
            source: SourceSelection::Auto,
            github: GitHubConfig {
                repo: DEFAULT_GITHUB_REPO.into(),
            },
            registry: RegistryConfig::default(),
            cdn: CdnConfig::default(),
        }
    }
}

/// `images.github`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GitHubConfig {
    /// `owner/name`.
    pub repo: String,
}

/// `images.registry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RegistryConfig {
    /// OCI image reference of a vmcontainer VM image (`vmcontainer push`)
    /// holding the qcow2. Empty: [`DEFAULT_REGISTRY_IMAGE`] for `source:
    /// registry`, and `auto` skips the registry.
    pub image: String,
    /// Allow plain HTTP to a registry that is not on loopback
    /// (vmcontainer's addition; go-container ignores it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub plain_http: bool,
}

/// The image `source: registry` pulls when `images.registry.image` is
/// empty: Docker Hub's `host-uk/core-devops:latest` (a name without a
/// registry host is on Docker Hub, as with `docker pull`).
pub const DEFAULT_REGISTRY_IMAGE: &str = "host-uk/core-devops:latest";

impl RegistryConfig {
    /// The reference `source: registry` uses: `image`, or the default.
    pub fn image_or_default(&self) -> &str {
        match self.image.trim() {
            "" => DEFAULT_REGISTRY_IMAGE,
            set => set,
        }
    }
}

/// `images.cdn`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CdnConfig {
    /// Base URL: the image is `<url>/<image>`.
    pub url: String,
}

/// `dev:`: defaults for `dev boot`, overridden by its flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DevConfig {
    /// Memory in MB (default 4096).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// vCPUs (default 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<u32>,
    /// Private key for SSH into the VM (default: ssh's own identities).
    /// A leading `~/` means the home directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<PathBuf>,
}

/// `images.source`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SourceSelection {
    /// GitHub first, then the registry (only when `images.registry.image`
    /// is set), then the CDN.
    #[default]
    Auto,
    /// GitHub releases only.
    GitHub,
    /// The CDN only.
    Cdn,
    /// The OCI registry only (`images.registry.image`). In a build without
    /// the `registry` feature it falls back to `auto`, as go-container did.
    Registry,
}

impl SourceSelection {
    /// The value as written in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceSelection::Auto => "auto",
            SourceSelection::GitHub => "github",
            SourceSelection::Cdn => "cdn",
            SourceSelection::Registry => "registry",
        }
    }

    /// Parses a value (case-insensitive; empty means `auto`, as in
    /// go-container).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Some(SourceSelection::Auto),
            "github" => Some(SourceSelection::GitHub),
            "cdn" => Some(SourceSelection::Cdn),
            "registry" => Some(SourceSelection::Registry),
            _ => None,
        }
    }
}

impl fmt::Display for SourceSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SourceSelection {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for SourceSelection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        SourceSelection::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown images.source {s:?}: expected auto, github or cdn, or registry"
            ))
        })
    }
}

/// Parses YAML text into `T`, mapping errors to one naming `path` and the
/// line. Empty text (or only comments) is `T::default()`.
pub(crate) fn parse_yaml<T>(path: &Path, text: &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + Default,
{
    match serde_norway::from_str::<Option<T>>(text) {
        Ok(v) => Ok(v.unwrap_or_default()),
        Err(e) => {
            let msg = e.to_string();
            // The crate appends " at line L column C"; we say the line
            // ourselves, right after the file name.
            let msg = match msg.rfind(" at line ") {
                Some(i) => msg[..i].to_string(),
                None => msg,
            };
            Err(Error::from(DevenvError::InvalidFile {
                path: path.to_path_buf(),
                line: e.location().map(|l| l.line()),
                message: msg,
            }))
        }
    }
}

impl Config {
    /// Loads `path`; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<Config> {
        match read_yaml_file(path)? {
            Some(text) => Self::parse(path, &text),
            None => Ok(Config::default()),
        }
    }

    /// Parses the text of `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config> {
        let mut cfg: Config = parse_yaml(path, text)?;
        if let Some(k) = &cfg.dev.ssh_key {
            cfg.dev.ssh_key = Some(expand_home(k));
        }
        Ok(cfg)
    }
}

/// Largest configuration file read: these are a few hundred bytes.
const MAX_CONFIG: u64 = 1 << 20;

/// Reads a YAML configuration file; `None` when there is none. Anything but
/// a regular file (a FIFO would block the read forever) is an error naming
/// the file.
pub(crate) fn read_yaml_file(path: &Path) -> Result<Option<String>> {
    use crate::regular_file::{read_to_string, OpenError};
    match read_to_string(path, MAX_CONFIG) {
        Ok(text) => Ok(Some(text)),
        Err(OpenError::Missing(_)) => Ok(None),
        Err(e) => Err(DevenvError::InvalidFile {
            path: path.to_path_buf(),
            line: None,
            message: e.describe(),
        }
        .into()),
    }
}

/// `~/x` → `$HOME/x`.
pub(crate) fn expand_home(p: &Path) -> PathBuf {
    expand_home_in(p, std::env::var_os("HOME").as_deref().map(Path::new))
}

fn expand_home_in(p: &Path, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/h/config.yaml"), text)
    }

    #[test]
    fn defaults_when_absent_or_empty() {
        let d = Config::default();
        assert_eq!(d.version, 1);
        assert_eq!(d.images.source, SourceSelection::Auto);
        assert_eq!(d.images.github.repo, DEFAULT_GITHUB_REPO);
        assert_eq!(d.images.cdn.url, "");
        assert_eq!(d.dev, DevConfig::default());
        assert_eq!(parse("").unwrap(), d);
        assert_eq!(parse("# only a comment\n").unwrap(), d);
        assert_eq!(parse("---\n").unwrap(), d);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Config::load(&dir.path().join("none.yaml")).unwrap(), d);
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = parse("images:\n  source: cdn\n  cdn:\n    url: https://cdn.test/img\n").unwrap();
        assert_eq!(c.images.source, SourceSelection::Cdn);
        assert_eq!(c.images.cdn.url, "https://cdn.test/img");
        assert_eq!(c.images.github.repo, DEFAULT_GITHUB_REPO);
        assert_eq!(c.version, 1);
    }

    #[test]
    fn go_container_file_loads() {
        let c = parse(
            "version: 1\nimages:\n  source: github\n  github:\n    repo: me/imgs\n  registry:\n    image: example/core-devops\n  cdn:\n    url: \"\"\nfuture_key: 1\n",
        )
        .unwrap();
        assert_eq!(c.images.source, SourceSelection::GitHub);
        assert_eq!(c.images.github.repo, "me/imgs");
        assert_eq!(c.images.registry.image, "example/core-devops");
        assert_eq!(c.images.registry.image_or_default(), "example/core-devops");
        assert_eq!(
            parse("images: {source: registry}")
                .unwrap()
                .images
                .registry
                .image_or_default(),
            DEFAULT_REGISTRY_IMAGE
        );
        // Case does not matter.
        assert_eq!(
            parse("images: {source: registry}").unwrap().images.source,
            SourceSelection::Registry
        );
        assert_eq!(
            parse("images: {source: GitHub}").unwrap().images.source,
            SourceSelection::GitHub
        );
    }

    #[test]
    fn dev_section() {
        let c = parse("dev:\n  memory: 512\n  cpus: 1\n  ssh_key: /k/id\n").unwrap();
        assert_eq!(c.dev.memory, Some(512));
        assert_eq!(c.dev.cpus, Some(1));
        assert_eq!(c.dev.ssh_key, Some(PathBuf::from("/k/id")));
        let home = Some(Path::new("/home/u"));
        assert_eq!(
            expand_home_in(Path::new("~/.ssh/k"), home),
            PathBuf::from("/home/u/.ssh/k")
        );
        assert_eq!(
            expand_home_in(Path::new("/abs"), home),
            PathBuf::from("/abs")
        );
        assert_eq!(expand_home_in(Path::new("~/k"), None), PathBuf::from("~/k"));
    }

    #[test]
    fn unknown_source_names_file_and_line() {
        let e = parse("version: 1\nimages:\n  source: ftp\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/h/config.yaml line 3"), "{s}");
        assert!(
            s.contains("\"ftp\"") && s.contains("auto, github or cdn"),
            "{s}"
        );
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput);
    }

    #[test]
    fn invalid_yaml_names_file_and_line() {
        let e = parse("version: 1\nimages:\n  source: [cdn\n").unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/h/config.yaml line"), "{s}");
        let e = parse("version: one\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("version"), "{e}");
    }
}
