//! OCI registries: VM images pushed and pulled as OCI artifacts, KubeVirt
//! containerDisks, and the local store of pulled images.
//!
//! - [`reference`]: what `REF` may be, and when plain HTTP is allowed.
//! - [`auth`]: credentials from the environment or Docker's config file.
//! - [`media`]: the artifact's media types, config and layer layout.
//! - [`push`], [`pull`]: moving an image to and from a registry.
//! - [`containerdisk`]: a KubeVirt containerDisk (an OCI *image*).
//! - [`store`]: `images/oci/` in the home, where pulled images live.
//!
//! oci-client supplies the reference grammar, the Docker token handshake
//! and the manifest types; the transfers themselves are ours (see
//! `session`): downloads go through [`crate::sources::download`], the same
//! verified, resumable, atomic path the dev image uses, and uploads stream
//! a file once while hashing it.

pub mod auth;
pub mod containerdisk;
pub mod media;
pub mod pull;
pub mod push;
pub mod reference;
pub(crate) mod session;
pub mod store;
mod upload;

use std::path::PathBuf;

pub use auth::Credentials;
pub use pull::{pull, PullOptions, PulledImage};
pub use push::{push, PushOptions, PushReport};
pub use reference::ImageRef;
pub use store::{ImageStore, StoredImage};

use crate::sources::SourceError;

/// Errors of registry operations. Each names the reference, registry, URL
/// or file involved.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// `REF` is not a valid image reference.
    #[error("invalid image reference {reference:?}: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Credentials in the environment or Docker's config are malformed.
    /// The message never repeats a secret.
    #[error("invalid registry credentials in {origin}: {reason}")]
    BadCredentials {
        /// The variable or file.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The registry could not be reached (connection refused, DNS, TLS).
    #[error("cannot reach registry {registry} ({url}): {reason}{hint}")]
    Unreachable {
        /// `host[:port]`.
        registry: String,
        /// The URL that was requested.
        url: String,
        /// What went wrong.
        reason: String,
        /// Advice (empty when none).
        hint: String,
    },
    /// The tag, digest or repository does not exist.
    #[error("{reference}: {what} (registry answered HTTP {status}{code})")]
    NotFound {
        /// The reference looked for.
        reference: String,
        /// `no such tag`, `no such repository`, ...
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error code, `: CODE` (empty when none).
        code: String,
    },
    /// The registry refused the credentials, or needs some.
    #[error("{registry} refused access to {reference} (HTTP {status}): {hint}")]
    Denied {
        /// `host[:port]`.
        registry: String,
        /// The reference.
        reference: String,
        /// 401 or 403.
        status: u16,
        /// Which credentials were used and how to supply others.
        hint: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url}: HTTP {status}{message}")]
    Status {
        /// The HTTP method.
        method: &'static str,
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
        /// The registry's own error text, `: ...` (empty when none).
        message: String,
    },
    /// A manifest, config or answer that cannot be used: malformed,
    /// oversized, with unsafe names or absurd sizes.
    #[error("{origin}: {reason}")]
    BadManifest {
        /// The reference or URL it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The reference names something else than a vmcontainer VM image.
    #[error(
        "{reference} is not a vmcontainer VM image: {found} (expected artifact type {expected})"
    )]
    NotAVmImage {
        /// The reference.
        reference: String,
        /// What it is instead.
        found: String,
        /// [`media::ARTIFACT_TYPE`].
        expected: &'static str,
    },
    /// Content does not match its digest; nothing was installed.
    #[error(
        "digest mismatch for {what}: expected {expected}, got {actual}; nothing was installed"
    )]
    DigestMismatch {
        /// The manifest or blob.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The image file cannot be pushed (missing, or not a bootable format).
    #[error("cannot push {}: {reason}", path.display())]
    BadImage {
        /// The image.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not enough free space for a pull.
    #[error("not enough space in {}: the image needs {needed} bytes, {available} are free", dir.display())]
    NoSpace {
        /// The images directory.
        dir: PathBuf,
        /// Bytes still to download.
        needed: u64,
        /// Bytes free.
        available: u64,
    },
    /// An external tool (`qemu-img`) failed.
    #[error("{tool} failed on {}: {message}", path.display())]
    Tool {
        /// The program.
        tool: &'static str,
        /// The file it worked on.
        path: PathBuf,
        /// Its error output.
        message: String,
    },
    /// Downloading a blob failed (verified, resumable downloader).
    #[error(transparent)]
    Download(#[from] SourceError),
    /// A local file operation failed.
    #[error("{op} {}: {error}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
}

impl RegistryError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        RegistryError::Io {
            op,
            path: path.into(),
            error,
        }
    }

    pub(crate) fn bad(origin: impl Into<String>, reason: impl Into<String>) -> Self {
        RegistryError::BadManifest {
            origin: origin.into(),
            reason: reason.into(),
        }
    }

    /// The stable kind bindings see:
    ///
    /// - [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): the
    ///   caller named something unusable — a malformed reference, an
    ///   image that cannot be pushed, a reference that is not a VM image.
    /// - [`ErrorKind::Checksum`](crate::ErrorKind::Checksum): a digest
    ///   mismatch (nothing installed).
    /// - [`ErrorKind::Io`](crate::ErrorKind::Io): local files, free space,
    ///   `qemu-img`.
    /// - [`ErrorKind::Download`](crate::ErrorKind::Download): everything
    ///   between us and the registry, in either direction — unreachable,
    ///   missing tag or repository, access denied, unexpected answers,
    ///   hostile manifests.
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind as K;
        match self {
            RegistryError::InvalidReference { .. }
            | RegistryError::BadCredentials { .. }
            | RegistryError::NotAVmImage { .. }
            | RegistryError::BadImage { .. } => K::InvalidInput,
            RegistryError::DigestMismatch { .. } => K::Checksum,
            RegistryError::Io { .. }
            | RegistryError::NoSpace { .. }
            | RegistryError::Tool { .. } => K::Io,
            RegistryError::Download(e) => e.kind(),
            RegistryError::Unreachable { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::Denied { .. }
            | RegistryError::Status { .. }
            | RegistryError::BadManifest { .. } => K::Download,
        }
    }
}

/// `sha256:<64 hex>` → the hex, or why not. Only sha256 is accepted: it is
/// what every registry uses and what the downloader verifies.
pub(crate) fn sha256_hex<'a>(origin: &str, digest: &'a str) -> Result<&'a str, RegistryError> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) =>
        {
            Ok(hex)
        }
        Some(("sha256", _)) => Err(RegistryError::bad(
            origin,
            format!("digest {digest:?} is not sha256: followed by 64 lowercase hex digits"),
        )),
        _ => Err(RegistryError::bad(
            origin,
            format!(
                "digest {:?} uses an unsupported algorithm (only sha256 is accepted)",
                clip(digest)
            ),
        )),
    }
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex(&sha2::Sha256::digest(bytes)))
}

/// `value` cut to 200 characters for a message: a hostile 100 kB reference
/// or digest must not become a 100 kB error line.
pub(crate) fn clip(value: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 200;
    match value.char_indices().nth(MAX) {
        None => value.into(),
        Some((cut, _)) => format!("{}…({} more bytes)", &value[..cut], value.len() - cut).into(),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind as K;

    #[test]
    fn digests_must_be_sha256_hex() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert_eq!(sha256_hex("o", &good).unwrap(), "a".repeat(64));
        for bad in [
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha512:{}", "a".repeat(128)),
            "sha256:../../etc".to_string(),
            "nocolon".to_string(),
        ] {
            let e = sha256_hex("origin-x", &bad).unwrap_err();
            assert!(e.to_string().contains("origin-x"), "{e}");
            assert_eq!(e.kind(), K::Download);
        }
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn kinds() {
        let mismatch = RegistryError::DigestMismatch {
            what: "blob".into(),
            expected: "a".into(),
            actual: "b".into(),
        };
        assert_eq!(mismatch.kind(), K::Checksum);
        assert_eq!(crate::Error::from(mismatch).kind(), K::Checksum);
        let r = RegistryError::InvalidReference {
            reference: "x".into(),
            reason: "y".into(),
        };
        assert_eq!(crate::Error::from(r).kind(), K::InvalidInput);
    }
}
