//! Where dev images come from: a CDN (plain HTTPS), GitHub releases or an
//! OCI registry (cargo feature `registry`), behind one [`ImageSource`]
//! trait, plus the verified, resumable download they share ([`download`]).
//!
//! A source first *resolves* the latest release (version, URL, published
//! checksum, size) and then downloads it. Resolution is cheap and may fail
//! over to the next source (`auto`: GitHub, then the registry when
//! `images.registry.image` is set, then CDN); a download that has started
//! never silently switches sources.

pub mod cdn;
pub mod checksum;
pub mod download;
pub mod github;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(test)]
pub(crate) mod test_server;

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

pub use cdn::CdnSource;
pub use download::{Downloaded, Progress};
pub use github::GitHubSource;
#[cfg(feature = "registry")]
pub use registry::RegistrySource;

/// Errors of image sources and downloads. Each names the URL or file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source is not configured (no URL, no repository).
    #[error("image source {source_name} is not configured: {reason}")]
    Unavailable {
        /// `github` or `cdn`.
        source_name: &'static str,
        /// What is missing.
        reason: String,
    },
    /// No configured source could resolve the image; one line per source.
    #[error("no image source could provide {image}: {}", join_failures(failures))]
    NoSource {
        /// The image that was looked for.
        image: String,
        /// Each source in the order tried (`github`, `cdn`) with why it
        /// could not provide the image ([`SourceError::Unavailable`] when it
        /// is not configured).
        failures: Vec<(&'static str, SourceError)>,
    },
    /// The HTTP request failed (connection, TLS, protocol).
    #[error("GET {url}: {reason}")]
    Http {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with an unexpected status.
    #[error("GET {url}: HTTP {status}{hint}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// Advice for common statuses (empty when none).
        hint: String,
    },
    /// A response could not be understood.
    #[error("{url}: {reason}")]
    BadResponse {
        /// The URL whose answer was wrong.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The release does not contain the image.
    #[error("{source_name} release {version} has no asset named {image}")]
    MissingAsset {
        /// `github` or `cdn`.
        source_name: &'static str,
        /// Release version or tag.
        version: String,
        /// The image looked for.
        image: String,
    },
    /// The source publishes no checksum, so the download cannot be verified.
    #[error("{source_name} publishes no sha256 for {image} (looked for {looked}); refusing an unverifiable download")]
    NoChecksum {
        /// `github` or `cdn`.
        source_name: &'static str,
        /// The image.
        image: String,
        /// Where a checksum was looked for.
        looked: String,
    },
    /// A published checksum is malformed.
    #[error("invalid sha256 from {origin}: {reason}")]
    BadChecksum {
        /// Where it came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The downloaded bytes do not match the published checksum. The
    /// partial download was deleted; any previous image is untouched.
    #[error("checksum mismatch for {}: expected sha256 {expected}, got {actual}; the download was discarded and any previously installed image kept", path.display())]
    ChecksumMismatch {
        /// The file that would have been installed.
        path: PathBuf,
        /// The published checksum.
        expected: String,
        /// The checksum of what arrived.
        actual: String,
    },
    /// The body ended early or the connection broke; the partial file is
    /// kept and the next attempt resumes it.
    #[error("download of {url} interrupted after {received} bytes ({reason}); run the command again to resume")]
    Interrupted {
        /// The URL.
        url: String,
        /// Bytes held in the partial file.
        received: u64,
        /// What broke.
        reason: String,
    },
    /// A name from a server would leave the images directory (or is not a
    /// plain file name).
    #[error("refusing file name {name:?} from {origin}: {reason}")]
    UnsafeName {
        /// The name as received.
        name: String,
        /// Where it came from.
        origin: String,
        /// Why it is refused.
        reason: &'static str,
    },
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
    /// The OCI registry source failed (unreachable, no such tag, denied,
    /// not a VM image, ...).
    #[cfg(feature = "registry")]
    #[error(transparent)]
    Registry(Box<crate::registry::RegistryError>),
}

impl SourceError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SourceError::Io {
            op,
            path: path.into(),
            error: source,
        }
    }

    pub(crate) fn http(url: &str, e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return SourceError::Http {
                url: url.to_string(),
                reason: format!(
                    "no answer within {:.0} s (timed out; VMCONTAINER_HTTP_TIMEOUT sets the limit)",
                    http_timeout().as_secs_f64()
                ),
            };
        }
        // reqwest's Display repeats the URL; the chain's innermost cause is
        // the useful part ("connection refused", "invalid certificate").
        let mut reason = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        SourceError::Http {
            url: url.to_string(),
            reason,
        }
    }

    /// The stable kind bindings see:
    ///
    /// - [`ErrorKind::Checksum`](crate::ErrorKind::Checksum): the image
    ///   cannot be verified — [`NoChecksum`](Self::NoChecksum),
    ///   [`BadChecksum`](Self::BadChecksum),
    ///   [`ChecksumMismatch`](Self::ChecksumMismatch).
    /// - [`ErrorKind::Download`](crate::ErrorKind::Download): getting it
    ///   failed — [`Http`](Self::Http), [`Status`](Self::Status),
    ///   [`BadResponse`](Self::BadResponse),
    ///   [`MissingAsset`](Self::MissingAsset),
    ///   [`Interrupted`](Self::Interrupted),
    ///   [`UnsafeName`](Self::UnsafeName).
    /// - [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput): a
    ///   source that is merely not configured
    ///   ([`Unavailable`](Self::Unavailable)) — the fix is in
    ///   `config.yaml` or the environment, and nothing was downloaded.
    /// - [`ErrorKind::Io`](crate::ErrorKind::Io): a local file operation
    ///   ([`Io`](Self::Io)).
    /// - [`NoSource`](Self::NoSource) takes the kind of what went wrong
    ///   with the sources that were actually tried: their common kind
    ///   (a CDN-only setup whose release has no checksum is `Checksum`),
    ///   `Download` when they failed in different ways, and `InvalidInput`
    ///   when no source is configured, so none was tried.
    pub fn kind(&self) -> crate::ErrorKind {
        use crate::ErrorKind as K;
        match self {
            SourceError::Unavailable { .. } => K::InvalidInput,
            SourceError::Io { .. } => K::Io,
            SourceError::NoChecksum { .. }
            | SourceError::BadChecksum { .. }
            | SourceError::ChecksumMismatch { .. } => K::Checksum,
            SourceError::Http { .. }
            | SourceError::Status { .. }
            | SourceError::BadResponse { .. }
            | SourceError::MissingAsset { .. }
            | SourceError::Interrupted { .. }
            | SourceError::UnsafeName { .. } => K::Download,
            #[cfg(feature = "registry")]
            SourceError::Registry(e) => e.kind(),
            SourceError::NoSource { failures, .. } => {
                let mut tried = failures
                    .iter()
                    .filter(|(_, e)| !matches!(e, SourceError::Unavailable { .. }))
                    .map(|(_, e)| e.kind());
                match tried.next() {
                    None => K::InvalidInput,
                    Some(first) if tried.all(|k| k == first) => first,
                    Some(_) => K::Download,
                }
            }
        }
    }

    /// Whether trying again (with resume) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Interrupted { .. } | SourceError::Http { .. } => true,
            SourceError::Status { status, .. } => *status >= 500 || *status == 408,
            #[cfg(feature = "registry")]
            SourceError::Registry(e) => {
                matches!(**e, crate::registry::RegistryError::Unreachable { .. })
            }
            _ => false,
        }
    }
}

/// `source: error; source: error` for [`SourceError::NoSource`].
fn join_failures(failures: &[(&'static str, SourceError)]) -> String {
    failures
        .iter()
        .map(|(name, e)| format!("{name}: {e}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// One downloadable release of an image, as a source resolved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Name of the source that resolved it (`github`, `cdn`).
    pub source: &'static str,
    /// Version (GitHub tag, or the CDN manifest's `version`).
    pub version: String,
    /// File name in the images directory (validated: a plain file name).
    pub file_name: String,
    /// Where to GET it.
    pub url: String,
    /// Extra request headers (e.g. `Accept` for GitHub's asset API). The
    /// token, when one is used, is added by the source at download time and
    /// never stored here.
    pub headers: Vec<(String, String)>,
    /// Published sha256, lowercase hex.
    pub sha256: String,
    /// Size in bytes, when published.
    pub size: Option<u64>,
}

impl Release {
    /// The download request for this release; `bearer` is the source's
    /// token, added only at download time.
    pub fn request<'a>(&'a self, bearer: Option<&'a str>) -> download::Request<'a> {
        download::Request {
            url: &self.url,
            headers: &self.headers,
            bearer,
            file_name: &self.file_name,
            sha256: &self.sha256,
            size: self.size,
        }
    }
}

/// A place dev images can be downloaded from.
pub trait ImageSource: Send + Sync + std::fmt::Debug {
    /// `github` or `cdn`.
    fn name(&self) -> &'static str;

    /// Whether the source is configured well enough to try (no network
    /// access); `Err` says what is missing.
    fn check_available(&self) -> Result<(), SourceError>;

    /// Whether [`Self::check_available`] passes.
    fn available(&self) -> bool {
        self.check_available().is_ok()
    }

    /// Resolves the latest release of the image: version, URL, checksum.
    fn latest(&self) -> BoxFuture<'_, Result<Release, SourceError>>;

    /// Downloads `release` into `dir`, verified against its checksum,
    /// reporting `(downloaded, total)` as bytes arrive. Resumes a partial
    /// download of the same release left by an earlier attempt.
    fn download<'a>(
        &'a self,
        release: &'a Release,
        dir: &'a Path,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Downloaded, SourceError>>;
}

/// How long a request may go without progress — connecting, waiting for
/// the answer, or between two pieces of a body — before it fails: 20 s, or
/// `VMCONTAINER_HTTP_TIMEOUT` seconds. A server that accepts and never
/// answers must not hold `dev install` for long, silently.
pub fn http_timeout() -> std::time::Duration {
    std::env::var("VMCONTAINER_HTTP_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .unwrap_or(std::time::Duration::from_secs(20))
}

/// The HTTP client every source uses: rustls, a user agent, and
/// [`http_timeout`] for connecting and between reads, but no limit on
/// whole bodies (images are large and links slow).
pub fn http_client() -> Result<reqwest::Client, SourceError> {
    let t = http_timeout();
    reqwest::Client::builder()
        .user_agent(concat!("vmcontainer/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(t)
        .read_timeout(t)
        .build()
        .map_err(|e| SourceError::Http {
            url: String::new(),
            reason: format!("cannot build the HTTP client: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind as K;

    fn status(code: u16) -> SourceError {
        SourceError::Status {
            url: "http://h/x".into(),
            status: code,
            hint: String::new(),
        }
    }

    fn mismatch() -> SourceError {
        SourceError::ChecksumMismatch {
            path: "/i/x.qcow2".into(),
            expected: "a".repeat(64),
            actual: "b".repeat(64),
        }
    }

    fn unavailable() -> SourceError {
        SourceError::Unavailable {
            source_name: "github",
            reason: "no repository".into(),
        }
    }

    #[test]
    fn download_and_checksum_failures_have_their_own_kinds() {
        let http = SourceError::Http {
            url: "http://h/x".into(),
            reason: "connection refused".into(),
        };
        let interrupted = SourceError::Interrupted {
            url: "http://h/x".into(),
            received: 10,
            reason: "connection reset".into(),
        };
        let bad_response = SourceError::BadResponse {
            url: "http://h/m.json".into(),
            reason: "invalid manifest JSON".into(),
        };
        let missing = SourceError::MissingAsset {
            source_name: "cdn",
            version: "1".into(),
            image: "x.qcow2".into(),
        };
        let unsafe_name = download::safe_file_name("../x", "http://h/m.json").unwrap_err();
        for e in [
            http,
            status(404),
            status(500),
            interrupted,
            bad_response,
            missing,
            unsafe_name,
        ] {
            assert_eq!(e.kind(), K::Download, "{e}");
            assert_eq!(crate::Error::from(e).kind(), K::Download);
        }
        let no_checksum = SourceError::NoChecksum {
            source_name: "cdn",
            image: "x.qcow2".into(),
            looked: "http://h/m.json".into(),
        };
        let bad_checksum = checksum::parse_hex("http://h/m.json", "xyz").unwrap_err();
        for e in [no_checksum, bad_checksum, mismatch()] {
            assert_eq!(e.kind(), K::Checksum, "{e}");
            assert_eq!(crate::Error::from(e).kind(), K::Checksum);
        }
        assert_eq!(unavailable().kind(), K::InvalidInput);
        let io = SourceError::io("create", "/i/x", std::io::Error::other("disk full"));
        assert_eq!(io.kind(), K::Io);
        assert_eq!(K::Download.as_str(), "download");
        assert_eq!(K::Checksum.as_str(), "checksum");
    }

    #[test]
    fn no_source_takes_the_kind_of_the_sources_tried() {
        let none = |failures: Vec<(&'static str, SourceError)>| SourceError::NoSource {
            image: "x.qcow2".into(),
            failures,
        };
        // Nothing configured, so nothing tried: a configuration problem.
        assert_eq!(none(vec![]).kind(), K::InvalidInput);
        assert_eq!(
            none(vec![("github", unavailable())]).kind(),
            K::InvalidInput
        );
        // Only the tried sources count.
        let e = none(vec![("github", unavailable()), ("cdn", mismatch())]);
        assert_eq!(e.kind(), K::Checksum);
        let e = none(vec![("github", status(404)), ("cdn", status(503))]);
        assert_eq!(e.kind(), K::Download);
        // Different failures: the image could not be obtained.
        let e = none(vec![("github", status(404)), ("cdn", mismatch())]);
        assert_eq!(e.kind(), K::Download);
        // The message still says what each source answered.
        assert_eq!(
            e.to_string(),
            format!(
                "no image source could provide x.qcow2: github: {}; cdn: {}",
                status(404),
                mismatch()
            )
        );
    }
}
