//! GitHub releases through the REST API: the latest release of
//! `images.github.repo`, its asset named like the image, and the checksum
//! from the asset's `digest` (`sha256:<hex>`) or an asset `<image>.sha256`.
//!
//! The token comes from `GITHUB_TOKEN` and only ever travels in a request
//! header (never a URL, a command line or an error message); the API base
//! comes from `GITHUB_API_URL` (default `https://api.github.com`).

use std::path::Path;

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::cdn::get_small;
use super::checksum::{parse_digest, parse_sha256sum};
use super::download::{fetch, safe_file_name, Downloaded, Progress};
use super::{ImageSource, Release, SourceError};

/// The public API, used when `GITHUB_API_URL` is unset.
pub const DEFAULT_API_URL: &str = "https://api.github.com";
const API_VERSION: &str = "2022-11-28";

#[derive(Debug, Deserialize)]
struct ApiRelease {
    tag_name: String,
    #[serde(default)]
    assets: Vec<ApiAsset>,
}

#[derive(Debug, Deserialize)]
struct ApiAsset {
    name: String,
    /// API URL of the asset (needs `Accept: application/octet-stream`).
    url: String,
    browser_download_url: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    digest: Option<String>,
}

/// Downloads from the latest GitHub release of a repository.
#[derive(Clone)]
pub struct GitHubSource {
    api: String,
    repo: String,
    image: String,
    token: Option<String>,
    client: reqwest::Client,
}

impl std::fmt::Debug for GitHubSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubSource")
            .field("api", &self.api)
            .field("repo", &self.repo)
            .field("image", &self.image)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl GitHubSource {
    /// A source for `image` in `repo` (`owner/name`) with an explicit API
    /// base and token.
    pub fn new(
        api_url: &str,
        repo: &str,
        image: &str,
        token: Option<String>,
        client: reqwest::Client,
    ) -> Self {
        GitHubSource {
            api: api_url.trim().trim_end_matches('/').to_string(),
            repo: repo.trim().to_string(),
            image: image.to_string(),
            token: token.filter(|t| !t.trim().is_empty()),
            client,
        }
    }

    /// A source configured from `GITHUB_API_URL` and `GITHUB_TOKEN`.
    pub fn from_env(repo: &str, image: &str, client: reqwest::Client) -> Self {
        let api = std::env::var("GITHUB_API_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        Self::new(
            &api,
            repo,
            image,
            std::env::var("GITHUB_TOKEN").ok(),
            client,
        )
    }

    fn api_headers(&self) -> [(&'static str, &'static str); 2] {
        [
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", API_VERSION),
        ]
    }

    /// Downloads the asset through the API when we have a token (private
    /// repositories need it), else the public browser URL, which does not
    /// count against the API rate limit.
    fn download_target(&self, a: &ApiAsset) -> (String, Vec<(String, String)>) {
        if self.token.is_some() {
            (
                a.url.clone(),
                vec![("Accept".into(), "application/octet-stream".into())],
            )
        } else {
            (a.browser_download_url.clone(), Vec::new())
        }
    }
}

/// What [`parse_release`] found in an answer of the releases API.
#[derive(Debug)]
pub(crate) struct ParsedRelease {
    release: ApiRelease,
    /// Index of the image's asset in `release.assets`.
    asset: usize,
    /// The asset's name, checked to be a plain file name.
    pub(crate) file_name: String,
    /// The checksum from the asset's `digest`, when it has one.
    pub(crate) from_digest: Option<String>,
}

/// Reads the JSON `text` of `url` (the latest release): the asset named
/// `image`, its file name (refused if it could leave the images
/// directory) and the checksum its `digest` gives. No network access.
pub(crate) fn parse_release(
    url: &str,
    text: &str,
    image: &str,
) -> Result<ParsedRelease, SourceError> {
    let release: ApiRelease = serde_json::from_str(text).map_err(|e| SourceError::BadResponse {
        url: url.to_string(),
        reason: format!("unexpected release JSON: {e}"),
    })?;
    let asset = release
        .assets
        .iter()
        .position(|a| a.name == image)
        .ok_or_else(|| SourceError::MissingAsset {
            source_name: "github",
            version: release.tag_name.clone(),
            image: image.to_string(),
        })?;
    let a = &release.assets[asset];
    let file_name = safe_file_name(&a.name, url)?.to_string();
    let from_digest = match &a.digest {
        Some(d) if !d.is_empty() => parse_digest(&format!("{url} (digest)"), d)?,
        _ => None,
    };
    Ok(ParsedRelease {
        release,
        asset,
        file_name,
        from_digest,
    })
}

fn valid_repo(repo: &str) -> bool {
    let part = |s: &str| {
        !s.is_empty()
            && s != "."
            && s != ".."
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    matches!(repo.split_once('/'), Some((o, n)) if part(o) && part(n))
}

impl ImageSource for GitHubSource {
    fn name(&self) -> &'static str {
        "github"
    }

    fn check_available(&self) -> Result<(), SourceError> {
        let unavailable = |reason: String| SourceError::Unavailable {
            source_name: "github",
            reason,
        };
        if !valid_repo(&self.repo) {
            return Err(unavailable(format!(
                "images.github.repo {:?} is not OWNER/NAME",
                self.repo
            )));
        }
        match reqwest::Url::parse(&self.api) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            _ => Err(unavailable(format!(
                "GITHUB_API_URL {:?} is not an http(s) URL",
                self.api
            ))),
        }
    }

    fn latest(&self) -> BoxFuture<'_, Result<Release, SourceError>> {
        Box::pin(async move {
            self.check_available()?;
            let url = format!("{}/repos/{}/releases/latest", self.api, self.repo);
            let text = get_small(
                &self.client,
                &url,
                &self.api_headers(),
                self.token.as_deref(),
            )
            .await?
            .ok_or_else(|| SourceError::Status {
                url: url.clone(),
                status: 404,
                hint: format!(
                    "; {} has no published release (or is private: set GITHUB_TOKEN)",
                    self.repo
                ),
            })?;
            let ParsedRelease {
                release: rel,
                asset,
                file_name,
                from_digest,
            } = parse_release(&url, &text, &self.image)?;
            let asset = &rel.assets[asset];
            let sha256 = match from_digest {
                Some(h) => h,
                None => {
                    let sum_name = format!("{}.sha256", self.image);
                    let Some(sum) = rel.assets.iter().find(|a| a.name == sum_name) else {
                        return Err(SourceError::NoChecksum {
                            source_name: "github",
                            image: self.image.clone(),
                            looked: format!(
                                "the asset's digest and an asset {sum_name} in release {}",
                                rel.tag_name
                            ),
                        });
                    };
                    let (sum_url, headers) = self.download_target(sum);
                    let headers: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let text = get_small(&self.client, &sum_url, &headers, self.token.as_deref())
                        .await?
                        .ok_or_else(|| SourceError::Status {
                            url: sum_url.clone(),
                            status: 404,
                            hint: String::new(),
                        })?;
                    parse_sha256sum(&sum_url, &text, &self.image)?
                }
            };
            let (dl_url, headers) = self.download_target(asset);
            Ok(Release {
                source: "github",
                version: rel.tag_name.clone(),
                file_name,
                url: dl_url,
                headers,
                sha256,
                size: asset.size,
            })
        })
    }

    fn download<'a>(
        &'a self,
        release: &'a Release,
        dir: &'a Path,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Downloaded, SourceError>> {
        Box::pin(async move {
            fetch(
                &self.client,
                &release.request(self.token.as_deref()),
                dir,
                progress,
            )
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        assert!(valid_repo("host-uk/core-images"));
        assert!(valid_repo("a.b/c_d"));
        for bad in ["", "x", "a/b/c", "../x", "a/..", "a b/c", "a/"] {
            assert!(!valid_repo(bad), "{bad}");
        }
    }

    #[test]
    fn token_is_redacted_in_debug() {
        let s = GitHubSource::new(
            DEFAULT_API_URL,
            "o/r",
            "i.qcow2",
            Some("ghp_secret".into()),
            reqwest::Client::new(),
        );
        assert!(!format!("{s:?}").contains("ghp_secret"));
        assert!(s.available());
        let e = GitHubSource::new(DEFAULT_API_URL, "nope", "i", None, reqwest::Client::new())
            .check_available()
            .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
