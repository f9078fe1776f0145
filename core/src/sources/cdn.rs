//! A CDN or static HTTP(S) server: `<url>/<image>`, the version from
//! `<url>/manifest.json`, the checksum from that manifest or from
//! `<url>/<image>.sha256`.

use std::path::Path;

use futures_util::future::BoxFuture;
use serde::Deserialize;

use super::checksum::{parse_hex, parse_sha256sum};
use super::download::{fetch, safe_file_name, Downloaded, Progress};
use super::{ImageSource, Release, SourceError};

/// Largest manifest or checksum file we read: they are a few hundred bytes.
const MAX_SMALL_BODY: usize = 1 << 20;

/// `<url>/manifest.json` on the CDN.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CdnManifest {
    /// Release version.
    #[serde(default)]
    pub version: String,
    /// Per-image details, keyed by file name.
    #[serde(default)]
    pub images: std::collections::BTreeMap<String, CdnImage>,
}

/// One image in a [`CdnManifest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CdnImage {
    /// sha256, hex.
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
}

/// Downloads from `images.cdn.url`.
#[derive(Debug, Clone)]
pub struct CdnSource {
    base: String,
    image: String,
    client: reqwest::Client,
}

impl CdnSource {
    /// A source for `image` under `base_url` (a trailing `/` is ignored).
    pub fn new(base_url: &str, image: &str, client: reqwest::Client) -> Self {
        CdnSource {
            base: base_url.trim().trim_end_matches('/').to_string(),
            image: image.to_string(),
            client,
        }
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// GETs a small text body; `Ok(None)` on 404.
    async fn get_small(&self, url: &str) -> Result<Option<String>, SourceError> {
        get_small(&self.client, url, &[], None).await
    }
}

/// GETs a small body (manifest, checksum file, API answer); `Ok(None)` on
/// 404. Shared with the GitHub source.
pub(super) async fn get_small(
    client: &reqwest::Client,
    url: &str,
    headers: &[(&str, &str)],
    bearer: Option<&str>,
) -> Result<Option<String>, SourceError> {
    // A small answer has a deadline as a whole, so a server that trickles
    // bytes cannot hold the request open forever.
    let mut req = client.get(url).timeout(super::http_timeout() * 2);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let mut resp = req.send().await.map_err(|e| SourceError::http(url, e))?;
    match resp.status().as_u16() {
        200 => {}
        404 => return Ok(None),
        s => {
            let hint = match s {
                401 | 403 => {
                    "; check access (for GitHub set GITHUB_TOKEN; a 403 may be its rate limit)"
                }
                _ => "",
            };
            return Err(SourceError::Status {
                url: url.to_string(),
                status: s,
                hint: hint.to_string(),
            });
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| SourceError::http(url, e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_SMALL_BODY {
            return Err(SourceError::BadResponse {
                url: url.to_string(),
                reason: format!("larger than {MAX_SMALL_BODY} bytes"),
            });
        }
    }
    String::from_utf8(body)
        .map(Some)
        .map_err(|_| SourceError::BadResponse {
            url: url.to_string(),
            reason: "not UTF-8 text".into(),
        })
}

impl ImageSource for CdnSource {
    fn name(&self) -> &'static str {
        "cdn"
    }

    fn check_available(&self) -> Result<(), SourceError> {
        let unavailable = |reason: String| SourceError::Unavailable {
            source_name: "cdn",
            reason,
        };
        if self.base.is_empty() {
            return Err(unavailable(
                "images.cdn.url is not set in config.yaml".into(),
            ));
        }
        match reqwest::Url::parse(&self.base) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            _ => Err(unavailable(format!(
                "images.cdn.url {:?} is not an http(s) URL",
                self.base
            ))),
        }
    }

    fn latest(&self) -> BoxFuture<'_, Result<Release, SourceError>> {
        Box::pin(async move {
            self.check_available()?;
            let manifest_url = self.url("manifest.json");
            let manifest = match self.get_small(&manifest_url).await? {
                Some(text) => serde_json::from_str::<CdnManifest>(&text).map_err(|e| {
                    SourceError::BadResponse {
                        url: manifest_url.clone(),
                        reason: format!("invalid manifest JSON: {e}"),
                    }
                })?,
                None => CdnManifest::default(),
            };
            // Keys of a remote manifest never become paths, but one that
            // tries to leave the directory says the manifest is hostile.
            for key in manifest.images.keys() {
                safe_file_name(key, &manifest_url)?;
            }
            let entry = manifest.images.get(&self.image);
            if !manifest.images.is_empty() && entry.is_none() {
                return Err(SourceError::MissingAsset {
                    source_name: "cdn",
                    version: manifest.version.clone(),
                    image: self.image.clone(),
                });
            }
            let version = if manifest.version.trim().is_empty() {
                "latest".to_string()
            } else {
                manifest.version.trim().to_string()
            };
            let sha256 = match entry.and_then(|e| e.sha256.as_deref()) {
                Some(h) => parse_hex(&manifest_url, h)?,
                None => {
                    let sum_url = self.url(&format!("{}.sha256", self.image));
                    match self.get_small(&sum_url).await? {
                        Some(text) => parse_sha256sum(&sum_url, &text, &self.image)?,
                        None => {
                            return Err(SourceError::NoChecksum {
                                source_name: "cdn",
                                image: self.image.clone(),
                                looked: format!("{manifest_url} and {sum_url}"),
                            })
                        }
                    }
                }
            };
            Ok(Release {
                source: "cdn",
                version,
                file_name: safe_file_name(&self.image, &self.base)?.to_string(),
                url: self.url(&self.image),
                headers: Vec::new(),
                sha256,
                size: entry.and_then(|e| e.size),
            })
        })
    }

    fn download<'a>(
        &'a self,
        release: &'a Release,
        dir: &'a Path,
        progress: Progress<'a>,
    ) -> BoxFuture<'a, Result<Downloaded, SourceError>> {
        Box::pin(async move { fetch(&self.client, &release.request(None), dir, progress).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_shapes() {
        let m: CdnManifest = serde_json::from_str(
            r#"{"version": "1.2.3", "images": {"a.qcow2": {"sha256": "ab", "size": 123}}}"#,
        )
        .unwrap();
        assert_eq!(m.version, "1.2.3");
        assert_eq!(m.images["a.qcow2"].size, Some(123));
        let m: CdnManifest = serde_json::from_str(r#"{"version": "2"}"#).unwrap();
        assert!(m.images.is_empty());
        // Unknown fields are tolerated.
        let m: CdnManifest =
            serde_json::from_str(r#"{"version": "3", "released": "today"}"#).unwrap();
        assert_eq!(m.version, "3");
    }

    #[test]
    fn availability_needs_an_http_url() {
        let c = reqwest::Client::new();
        assert!(!CdnSource::new("", "x.qcow2", c.clone()).available());
        let e = CdnSource::new("ftp://h/x", "x.qcow2", c.clone())
            .check_available()
            .unwrap_err();
        assert!(e.to_string().contains("ftp://h/x"), "{e}");
        let s = CdnSource::new("https://h/images/", "x.qcow2", c);
        assert!(s.available());
        assert_eq!(s.url("x.qcow2"), "https://h/images/x.qcow2");
    }
}
