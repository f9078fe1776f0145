//! One repository on one registry, spoken to over the OCI distribution
//! API: manifests, blobs, uploads.
//!
//! oci-client does the authorization handshake (HTTP basic, or the Docker
//! token flow: a 401 with a `Bearer realm=...` challenge, then a token
//! from the realm for the repository and operation); every request then
//! carries the resulting `Authorization` header, and a 401 on a request
//! that can be repeated gets one fresh token. Bodies are read with a size
//! cap, so a hostile registry cannot make us buffer gigabytes, and every
//! manifest and blob is checked against its digest.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_client::RegistryOperation;
use reqwest::{Method, StatusCode};

use super::auth::{self, Credentials};
use super::media::{self, MAX_MANIFEST};
use super::reference::ImageRef;
use super::upload::Body;
use super::{digest_of, RegistryError};

/// Largest error body read from a registry.
const MAX_ERROR_BODY: usize = 64 << 10;
/// How long a connection attempt may take: a registry that is down on
/// loopback refuses at once; a black-holed address fails after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Manifest types we ask for, most specific first.
const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

/// A manifest as fetched: its bytes, digest and media type.
#[derive(Debug, Clone)]
pub(crate) struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub digest: String,
    pub media_type: String,
}

pub(crate) struct Session {
    http: reqwest::Client,
    oci: oci_client::Client,
    reference: ImageRef,
    base: String,
    creds: auth::Found,
    op: RegistryOperation,
    authorization: Mutex<Option<String>>,
}

impl Session {
    /// Opens `reference`'s repository for `op` (push also allows pull),
    /// over plain HTTP only if [`ImageRef::allows_plain_http`].
    pub async fn open(
        reference: &ImageRef,
        plain_http: bool,
        op: RegistryOperation,
    ) -> Result<Session, RegistryError> {
        let http_ok = reference.allows_plain_http(plain_http);
        let scheme = if http_ok { "http" } else { "https" };
        let creds = auth::resolve(reference.registry())?;
        let oci = oci_client::Client::new(oci_client::client::ClientConfig {
            protocol: if http_ok {
                oci_client::client::ClientProtocol::Http
            } else {
                oci_client::client::ClientProtocol::Https
            },
            connect_timeout: Some(CONNECT_TIMEOUT),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("vmcontainer/", env!("CARGO_PKG_VERSION")),
            platform_resolver: None,
            ..Default::default()
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!("vmcontainer/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| RegistryError::bad("HTTP client", e.to_string()))?;
        let s = Session {
            http,
            oci,
            base: format!("{scheme}://{}", reference.resolve_registry()),
            reference: reference.clone(),
            creds,
            op,
            authorization: Mutex::new(None),
        };
        s.authorize().await?;
        Ok(s)
    }

    /// The HTTP client (for the downloader).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The reference this session was opened for.
    pub fn reference(&self) -> &ImageRef {
        &self.reference
    }

    /// Gets (again) the `Authorization` header to send.
    async fn authorize(&self) -> Result<(), RegistryError> {
        let got = self
            .oci
            .auth(
                self.reference.oci(),
                &self.creds.credentials.to_oci(),
                self.op,
            )
            .await;
        let header = match got {
            Ok(Some(token)) => Some(format!("Bearer {token}")),
            Ok(None) => match &self.creds.credentials {
                Credentials::Basic { user, password } => {
                    use base64::Engine;
                    let b64 = base64::engine::general_purpose::STANDARD
                        .encode(format!("{user}:{password}"));
                    Some(format!("Basic {b64}"))
                }
                Credentials::Bearer(t) => Some(format!("Bearer {t}")),
                Credentials::Anonymous => None,
            },
            Err(oci_client::errors::OciDistributionError::RequestError(e)) => {
                return Err(self.unreachable(&format!("{}/v2/", self.base), &e));
            }
            Err(oci_client::errors::OciDistributionError::AuthenticationFailure(reason)) => {
                return Err(RegistryError::Denied {
                    registry: self.reference.registry().to_string(),
                    reference: self.reference.to_string(),
                    status: 401,
                    hint: format!(
                        "the token service refused the credentials from {} ({})",
                        self.creds.origin,
                        super::clip(reason.trim())
                    ),
                });
            }
            Err(e) => {
                return Err(RegistryError::bad(
                    self.reference.registry(),
                    format!("authorization failed: {e}"),
                ))
            }
        };
        *self.authorization.lock().unwrap_or_else(|e| e.into_inner()) = header;
        Ok(())
    }

    fn auth_header(&self) -> Option<String> {
        self.authorization
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `<base>/v2/<repository>/<rest>`.
    pub fn url(&self, rest: &str) -> String {
        format!("{}/v2/{}/{rest}", self.base, self.reference.repository())
    }

    /// Where a blob is downloaded from, and the headers to send.
    pub fn blob_request(&self, digest: &str) -> (String, Vec<(String, String)>) {
        let headers = self
            .auth_header()
            .map(|h| vec![("Authorization".to_string(), h)])
            .unwrap_or_default();
        (self.url(&format!("blobs/{digest}")), headers)
    }

    fn unreachable(&self, url: &str, e: &reqwest::Error) -> RegistryError {
        let mut reason = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            reason = s.to_string();
            src = s.source();
        }
        let tls = [
            "certificate",
            "tls",
            "handshake",
            "corrupt message",
            "invalid peer",
        ]
        .iter()
        .any(|w| reason.to_ascii_lowercase().contains(w));
        let hint = if tls && self.base.starts_with("https:") {
            "; if this registry only speaks plain HTTP, pass --plain-http".to_string()
        } else if e.is_timeout() || e.is_connect() {
            "; is the registry running and the address right?".to_string()
        } else {
            String::new()
        };
        RegistryError::Unreachable {
            registry: self.reference.registry().to_string(),
            url: url.to_string(),
            reason,
            hint,
        }
    }

    /// Sends a request that can be repeated (no streaming body), with one
    /// fresh authorization after a 401 (a token may expire during a long
    /// upload).
    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, RegistryError> {
        let resp = self.send_once(&method, url, headers, body.clone()).await?;
        if resp.status() == StatusCode::UNAUTHORIZED
            && self.creds.credentials != Credentials::Anonymous
        {
            self.authorize().await?;
            return self.send_once(&method, url, headers, body).await;
        }
        Ok(resp)
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut rb = self.http.request(method.clone(), url);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        if let Some(h) = self.auth_header() {
            rb = rb.header(reqwest::header::AUTHORIZATION, h);
        }
        rb = match body {
            Some(b) => rb.body(b),
            // Some registries want an explicit empty body on writes.
            None if matches!(*method, Method::POST | Method::PUT) => {
                rb.header(reqwest::header::CONTENT_LENGTH, "0")
            }
            None => rb,
        };
        rb.send().await.map_err(|e| self.unreachable(url, &e))
    }

    /// The error for an unexpected answer, from its status and the
    /// registry's `{"errors": [{"code", "message"}]}` body.
    async fn error(
        &self,
        method: &'static str,
        url: &str,
        resp: reqwest::Response,
        what: &str,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let body = read_capped(resp, MAX_ERROR_BODY)
            .await
            .map(|(b, _)| b)
            .unwrap_or_default();
        let (code, message) = registry_error(&body);
        match status {
            401 | 403 => RegistryError::Denied {
                registry: self.reference.registry().to_string(),
                reference: self.reference.to_string(),
                status,
                hint: match self.creds.credentials {
                    Credentials::Anonymous => format!(
                        "no credentials were found; set {} (user:password) or {} and {}, or add the registry to the auths of Docker's config.json (credential helpers are not run)",
                        auth::AUTH_ENV,
                        auth::USER_ENV,
                        auth::PASSWORD_ENV
                    ),
                    _ => format!("the credentials from {} were not accepted", self.creds.origin),
                },
            },
            404 if !what.is_empty() => RegistryError::NotFound {
                reference: self.reference.to_string(),
                what: match code.as_str() {
                    "NAME_UNKNOWN" => format!(
                        "no repository {} on {}",
                        self.reference.repository(),
                        self.reference.registry()
                    ),
                    "MANIFEST_UNKNOWN" if what == "manifest" => match self.reference.digest() {
                        Some(d) => format!("no manifest {d}"),
                        None => format!(
                            "no tag {} in {}",
                            self.reference.manifest_ref(),
                            self.reference.repository()
                        ),
                    },
                    _ => format!("{what} not found"),
                },
                status,
                code: if code.is_empty() {
                    String::new()
                } else {
                    format!(": {code}")
                },
            },
            _ => RegistryError::Status {
                method,
                url: url.to_string(),
                status,
                message: if message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", super::clip(&message))
                },
            },
        }
    }

    /// Fetches the manifest `tag_or_digest`, capped at 4 MiB and checked
    /// against the digest asked for or announced.
    pub async fn get_manifest(
        &self,
        tag_or_digest: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(&format!("manifests/{tag_or_digest}"));
        let resp = self
            .send(Method::GET, &url, &[("Accept", ACCEPT)], None)
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(self.error("GET", &url, resp, "manifest").await);
        }
        let media_type = header(&resp, "content-type")
            .map(|t| t.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let announced = header(&resp, "docker-content-digest");
        let origin = format!("manifest of {}", self.reference);
        let (bytes, too_big) = read_capped(resp, MAX_MANIFEST)
            .await
            .map_err(|e| self.unreachable(&url, &e))?;
        if too_big {
            return Err(RegistryError::bad(
                origin,
                format!("larger than {MAX_MANIFEST} bytes; refusing it"),
            ));
        }
        let digest = digest_of(&bytes);
        let expected = if tag_or_digest.starts_with("sha256:") {
            Some(tag_or_digest.to_string())
        } else {
            announced.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(exp) = expected {
            if exp != digest {
                return Err(RegistryError::DigestMismatch {
                    what: origin,
                    expected: exp,
                    actual: digest,
                });
            }
        }
        Ok(FetchedManifest {
            bytes,
            digest,
            media_type,
        })
    }

    /// Fetches a small blob (a config), verified and at most `max` bytes.
    pub async fn get_small_blob(
        &self,
        digest: &str,
        size: u64,
        max: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::GET, &url, &[], None).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.error("GET", &url, resp, "blob").await);
        }
        let (bytes, too_big) = read_capped(resp, max as usize)
            .await
            .map_err(|e| self.unreachable(&url, &e))?;
        if too_big || bytes.len() as u64 != size {
            return Err(RegistryError::bad(
                &url,
                format!(
                    "blob is {} bytes, the manifest says {size}",
                    if too_big {
                        format!("over {max}")
                    } else {
                        bytes.len().to_string()
                    }
                ),
            ));
        }
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(RegistryError::DigestMismatch {
                what: url,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Whether the repository has the blob `digest`.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::HEAD, &url, &[], None).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.error("HEAD", &url, resp, "").await),
        }
    }

    /// Uploads a small blob whose digest is known (a config), unless the
    /// repository has it already.
    pub async fn put_small_blob(&self, bytes: Vec<u8>) -> Result<String, RegistryError> {
        let digest = digest_of(&bytes);
        if self.blob_exists(&digest).await? {
            return Ok(digest);
        }
        let location = self.start_upload().await?;
        let url = with_digest(&location, &digest)?;
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[("Content-Type", "application/octet-stream")],
                Some(bytes),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error("PUT", &url, resp, "").await);
        }
        Ok(digest)
    }

    /// `POST .../blobs/uploads/`: a new upload session's absolute URL.
    async fn start_upload(&self) -> Result<String, RegistryError> {
        let url = self.url("blobs/uploads/");
        let resp = self.send(Method::POST, &url, &[], None).await?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(self.error("POST", &url, resp, "").await);
        }
        self.location(&url, &resp)
    }

    fn location(&self, url: &str, resp: &reqwest::Response) -> Result<String, RegistryError> {
        let loc = header(resp, "location")
            .ok_or_else(|| RegistryError::bad(url, "the registry sent no Location"))?;
        reqwest::Url::parse(&self.base)
            .and_then(|b| b.join(&loc))
            .map(|u| u.to_string())
            .map_err(|e| RegistryError::bad(url, format!("bad Location {loc:?}: {e}")))
    }

    /// Uploads `body` in one streaming `PATCH` (read once from disk,
    /// hashed as it goes) and commits it under the digest computed on the
    /// way; the registry checks that digest too. `sent` counts bytes.
    pub async fn upload(
        &self,
        body: Body,
        sent: Arc<AtomicU64>,
    ) -> Result<(String, u64), RegistryError> {
        let len = body.len();
        let body_path = body.first_file().unwrap_or_default();
        let location = self.start_upload().await?;
        let started = body.start(sent);
        let mut rb = self
            .http
            .patch(&location)
            .header("Content-Type", "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len.to_string())
            .body(started.body);
        if let Some(h) = self.auth_header() {
            rb = rb.header(reqwest::header::AUTHORIZATION, h);
        }
        let sent_result = rb.send().await;
        let read = started
            .digest
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        let resp = match (sent_result, read) {
            // The request stopped reading because the body failed: the
            // read error is the cause.
            (_, Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                return Err(RegistryError::io("read for upload", body_path, e))
            }
            (Err(e), _) => return Err(self.unreachable(&location, &e)),
            (Ok(resp), read) => {
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(self.error("PATCH", &location, resp, "").await);
                }
                let digest =
                    read.map_err(|e| RegistryError::io("read for upload", body_path, e))?;
                (resp, digest)
            }
        };
        let (resp, digest) = resp;
        let location = self.location(&location, &resp)?;
        let url = with_digest(&location, &digest)?;
        let resp = self.send(Method::PUT, &url, &[], None).await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error("PUT", &url, resp, "").await);
        }
        Ok((digest, len))
    }

    /// `PUT .../manifests/<tag>`; returns the manifest's digest.
    pub async fn put_manifest(
        &self,
        tag: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let digest = digest_of(&bytes);
        let url = self.url(&format!("manifests/{tag}"));
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[("Content-Type", media_type)],
                Some(bytes),
            )
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self.error("PUT", &url, resp, "").await);
        }
        if let Some(d) = header(&resp, "docker-content-digest") {
            if d != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest stored as {url}"),
                    expected: digest,
                    actual: d,
                });
            }
        }
        Ok(digest)
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// `location` with `digest=<digest>` added to its query.
fn with_digest(location: &str, digest: &str) -> Result<String, RegistryError> {
    let mut u = reqwest::Url::parse(location)
        .map_err(|e| RegistryError::bad(location, format!("bad upload URL: {e}")))?;
    u.query_pairs_mut().append_pair("digest", digest);
    Ok(u.to_string())
}

/// Reads at most `max` bytes of a body; `true` when there was more.
async fn read_capped(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Ok((Vec::new(), true));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

/// The first `(code, message)` of a distribution error body.
fn registry_error(body: &[u8]) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(e) => e
            .errors
            .into_iter()
            .next()
            .map(|i| (i.code, i.message))
            .unwrap_or_default(),
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_string(),
        ),
    }
}

/// The media types a fetched manifest may have.
pub(crate) fn manifest_kind(m: &FetchedManifest) -> ManifestKind {
    let declared = serde_json::from_slice::<serde_json::Value>(&m.bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        });
    let t = declared.as_deref().unwrap_or(m.media_type.as_str());
    match t {
        media::INDEX_MEDIA_TYPE | media::DOCKER_LIST_MEDIA_TYPE => ManifestKind::Index,
        _ => ManifestKind::Image,
    }
}

/// An image manifest or an index of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManifestKind {
    Image,
    Index,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies() {
        let (c, m) = registry_error(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
        );
        assert_eq!(
            (c.as_str(), m.as_str()),
            ("MANIFEST_UNKNOWN", "manifest unknown")
        );
        let (c, m) = registry_error(b"<html>bad gateway</html>");
        assert_eq!((c.as_str(), m.as_str()), ("", "<html>bad gateway</html>"));
    }

    #[test]
    fn upload_urls_keep_their_query() {
        let d = format!("sha256:{}", "a".repeat(64));
        let u = with_digest("http://h:1/v2/r/blobs/uploads/x?_state=abc", &d).unwrap();
        assert!(
            u.contains("_state=abc") && u.contains("digest=sha256%3A"),
            "{u}"
        );
    }
}
