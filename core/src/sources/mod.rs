//! Where dev images come from: a CDN (plain HTTPS) or GitHub releases,
//! behind one [`ImageSource`] trait, plus the verified, resumable download
//! they share ([`download`]).
//!
//! A source first *resolves* the latest release (version, URL, published
//! checksum, size) and then downloads it. Resolution is cheap and may fail
//! over to the next source (`auto`: GitHub, then CDN); a download that has
//! started never silently switches sources.

pub mod cdn;
pub mod checksum;
pub mod download;
pub mod github;

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

pub use cdn::CdnSource;
pub use download::{Downloaded, Progress};
pub use github::GitHubSource;

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
    #[error("no image source could provide {image}: {}", failures.join("; "))]
    NoSource {
        /// The image that was looked for.
        image: String,
        /// `source: error` for each source tried.
        failures: Vec<String>,
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
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl SourceError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SourceError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn http(url: &str, e: reqwest::Error) -> Self {
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

    /// The stable kind bindings see: configuration problems are invalid
    /// input, local files are I/O, everything from the network is
    /// communication.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            SourceError::Unavailable { .. } => crate::ErrorKind::InvalidInput,
            SourceError::Io { .. } => crate::ErrorKind::Io,
            _ => crate::ErrorKind::Communication,
        }
    }

    /// Whether trying again (with resume) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Interrupted { .. } | SourceError::Http { .. } => true,
            SourceError::Status { status, .. } => *status >= 500 || *status == 408,
            _ => false,
        }
    }
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

/// The HTTP client every source uses: rustls, a user agent, generous
/// timeouts for slow links but none on whole bodies (images are large).
pub fn http_client() -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .user_agent(concat!("vmcontainer/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(30))
        .read_timeout(std::time::Duration::from_secs(60))
        .build()
        .map_err(|e| SourceError::Http {
            url: String::new(),
            reason: format!("cannot build the HTTP client: {e}"),
        })
}
