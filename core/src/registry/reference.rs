//! Image references (`registry/repository:tag`, `...@sha256:<hex>`), how
//! `run` tells one from a file path, and when plain HTTP is allowed.
//!
//! The grammar is the OCI distribution one (oci-client's `Reference`):
//! repository components are lowercase `[a-z0-9]` runs joined by `.`, `_`,
//! `__` or dashes, so `..` or an empty component can never name a
//! directory. A name without a registry host (`user/repo:tag`) means Docker
//! Hub, as with `docker pull`; a reference without tag or digest means
//! `:latest`.

use std::path::Path;

use super::RegistryError;

/// Longest reference accepted (the distribution spec caps the repository
/// at 255 bytes; a tag is at most 128, a digest 71).
const MAX_REFERENCE: usize = 512;

/// A parsed, validated image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    inner: oci_client::Reference,
}

impl ImageRef {
    /// Parses `s`, saying exactly what is wrong when it is not a reference.
    pub fn parse(s: &str) -> Result<Self, RegistryError> {
        let refuse = |reason: &str| RegistryError::InvalidReference {
            reference: super::clip(s).into_owned(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(refuse("it is empty"));
        }
        if s.len() > MAX_REFERENCE {
            return Err(refuse(&format!("it is longer than {MAX_REFERENCE} bytes")));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(refuse("it contains whitespace or a control character"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (s, None),
        };
        if let Some(d) = digest {
            if super::sha256_hex(s, d).is_err() {
                return Err(refuse(
                    "the digest must be sha256: followed by 64 lowercase hex digits",
                ));
            }
        }
        if name.split('/').any(|c| c == ".." || c == ".") {
            return Err(refuse(
                "a path-traversing component (`.` or `..`) is not a repository name",
            ));
        }
        if name.split('/').any(str::is_empty) {
            return Err(refuse("it has an empty path component"));
        }
        let inner = oci_client::Reference::try_from(s).map_err(|e| {
            use oci_client::ParseError as P;
            refuse(match e {
                P::DigestInvalidFormat | P::DigestInvalidLength | P::DigestUnsupported => {
                    "the digest must be sha256: followed by 64 hex digits"
                }
                P::NameTooLong => "the repository name is longer than 255 bytes",
                P::NameContainsUppercase => "repository names must be lowercase",
                P::NameEmpty => "the repository name is missing",
                P::TagInvalidFormat => "the tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                _ => "expected [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST] with lowercase repository components of a-z, 0-9 and . _ -",
            })
        })?;
        if let Some(tag) = inner.tag() {
            let ok = tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !tag.starts_with(['.', '-']);
            if !ok {
                return Err(refuse(
                    "the tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        Ok(ImageRef { inner })
    }

    /// The registry as written (`localhost:5000`, `docker.io`).
    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    /// The host requests go to (`index.docker.io` for `docker.io`).
    pub fn resolve_registry(&self) -> &str {
        self.inner.resolve_registry()
    }

    /// `path/to/repo`.
    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    /// The tag or digest that names the manifest (a digest wins).
    pub fn manifest_ref(&self) -> &str {
        self.inner.digest().or(self.inner.tag()).unwrap_or("latest")
    }

    /// The same repository at `digest`.
    pub fn with_digest(&self, digest: &str) -> ImageRef {
        ImageRef {
            inner: oci_client::Reference::with_digest(
                self.inner.registry().to_string(),
                self.inner.repository().to_string(),
                digest.to_string(),
            ),
        }
    }

    pub(crate) fn oci(&self) -> &oci_client::Reference {
        &self.inner
    }

    /// Whether requests may use plain HTTP: only for a loopback registry
    /// (`localhost`, `127.0.0.0/8`, `::1`) unless the caller insists.
    pub fn allows_plain_http(&self, plain_http: bool) -> bool {
        plain_http || is_loopback(self.resolve_registry())
    }
}

impl std::fmt::Display for ImageRef {
    /// The canonical form: registry, repository, then tag and/or digest.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

/// Whether `registry` (`host[:port]`) is a loopback address.
pub fn is_loopback(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match registry.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => registry,
        }
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// How `run` reads its IMAGE argument: a path that exists (a file, or a
/// LinuxKit `NAME` whose `NAME-kernel` and `NAME-initrd.img` exist) is a
/// path. Otherwise it is a registry reference when it names a registry
/// host (`host.domain/...`, `host:port/...`, `localhost/...`) or a digest
/// (`...@sha256:...`); anything else stays a path, so a mistyped file name
/// is reported as a missing file rather than looked up on Docker Hub.
pub fn is_registry_reference(arg: &str) -> bool {
    let p = Path::new(arg);
    if p.exists() || crate::image::resolve_kernel_image(p).is_some() {
        return false;
    }
    if arg.starts_with(['/', '.', '~']) {
        return false;
    }
    if arg.contains("@sha256:") {
        return true;
    }
    match arg.split_once('/') {
        Some((first, _)) => first.contains(['.', ':']) || first == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_and_print_canonically() {
        let r = ImageRef::parse("localhost:5000/vm/guest:v1").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.repository(), "vm/guest");
        assert_eq!(r.tag(), Some("v1"));
        assert_eq!(r.manifest_ref(), "v1");
        assert_eq!(r.to_string(), "localhost:5000/vm/guest:v1");
        let r = ImageRef::parse("localhost:5000/vm/guest").unwrap();
        assert_eq!(r.tag(), Some("latest"));
        let d = format!("sha256:{}", "0".repeat(64));
        let r = ImageRef::parse(&format!("127.0.0.1:5000/a@{d}")).unwrap();
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(r.with_digest(&d).digest(), Some(d.as_str()));
        // A short name is Docker Hub's.
        let r = ImageRef::parse("user/repo:1").unwrap();
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.resolve_registry(), "index.docker.io");
    }

    #[test]
    fn hostile_references_are_refused_with_the_reason() {
        for (bad, says) in [
            ("", "empty"),
            ("localhost:5000/../etc:x", "path-traversing"),
            ("localhost:5000/a/../../b", "path-traversing"),
            ("localhost:5000/./a", "path-traversing"),
            ("localhost:5000//a", "empty path component"),
            ("localhost:5000/Upper", "lowercase"),
            ("localhost:5000/a:b c", "whitespace"),
            ("localhost:5000/a\n:b", "control"),
            ("localhost:5000/a:-tag", "tag"),
            ("localhost:5000/a:t\u{e9}g", "tag"),
            ("localhost:5000/a@sha256:abc", "digest"),
            (
                "localhost:5000/a@md5:0123456789abcdef0123456789abcdef",
                "digest",
            ),
        ] {
            let e = ImageRef::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
        let long = format!("localhost:5000/{}", "a".repeat(600));
        assert!(ImageRef::parse(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than"));
        let e = ImageRef::parse(&"x".repeat(100_000))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 500, "{}", e.len());
    }

    #[test]
    fn plain_http_only_for_loopback_unless_asked() {
        for lo in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_loopback(lo), "{lo}");
        }
        for remote in [
            "registry.example.com",
            "10.0.0.1:5000",
            "localhost.evil.com:5000",
            "[::2]:1",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
        let r = ImageRef::parse("registry.example.com/a:b").unwrap();
        assert!(!r.allows_plain_http(false));
        assert!(r.allows_plain_http(true));
        assert!(ImageRef::parse("localhost:5000/a")
            .unwrap()
            .allows_plain_http(false));
    }

    #[test]
    fn run_argument_path_or_reference() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("localhost:5000");
        std::fs::create_dir(&f).unwrap();
        std::fs::write(f.join("x"), b"").unwrap();
        // A path that exists wins, whatever it looks like.
        assert!(!is_registry_reference(f.join("x").to_str().unwrap()));
        assert!(is_registry_reference("localhost:5000/vm/guest:1"));
        assert!(is_registry_reference("registry.example.com/vm/guest"));
        assert!(is_registry_reference(&format!(
            "vm@sha256:{}",
            "a".repeat(64)
        )));
        for path in [
            "guest.qcow2",
            "images/guest.qcow2",
            "./x",
            "/abs/x.iso",
            "user/repo:1",
        ] {
            assert!(!is_registry_reference(path), "{path}");
        }
    }
}
