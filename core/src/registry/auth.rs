//! Registry credentials. They come from the environment or from Docker's
//! config file, never from a command line, and are never printed.
//!
//! In order, the first that is set wins:
//!
//! 1. `VMCONTAINER_REGISTRY_TOKEN`: a bearer token sent as is.
//! 2. `VMCONTAINER_REGISTRY_USER` and `VMCONTAINER_REGISTRY_PASSWORD`
//!    (both, or neither).
//! 3. `REGISTRY_AUTH`: `user:password`, or its base64 form (what Docker's
//!    config stores under `auth`).
//! 4. Docker's config, `$DOCKER_CONFIG/config.json` or
//!    `~/.docker/config.json`: the `auths` entry for the registry (`auth`,
//!    or `username` + `password`, or `registrytoken`). Credential helpers
//!    (`credsStore`, `credHelpers`) are not run.
//! 5. Anonymous.
//!
//! The environment applies to whichever registry the command talks to;
//! the config file is per registry. A user name and password are used for
//! HTTP basic authentication, or exchanged for a bearer token when the
//! registry asks for one (the Docker token flow).

use std::path::{Path, PathBuf};

use base64::Engine;

use super::RegistryError;

/// Bearer token for every registry.
pub const TOKEN_ENV: &str = "VMCONTAINER_REGISTRY_TOKEN";
/// User name for every registry (with [`PASSWORD_ENV`]).
pub const USER_ENV: &str = "VMCONTAINER_REGISTRY_USER";
/// Password for every registry (with [`USER_ENV`]).
pub const PASSWORD_ENV: &str = "VMCONTAINER_REGISTRY_PASSWORD";
/// `user:password`, plain or base64.
pub const AUTH_ENV: &str = "REGISTRY_AUTH";

/// Largest Docker config file read.
const MAX_CONFIG: u64 = 4 << 20;

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credentials {
    /// No credentials.
    #[default]
    Anonymous,
    /// User name and password.
    Basic {
        /// User name.
        user: String,
        /// Password (or access token used as one).
        password: String,
    },
    /// A bearer token.
    Bearer(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { user, .. } => write!(f, "Basic({user:?}, <redacted>)"),
            Credentials::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

impl Credentials {
    pub(crate) fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth as A;
        match self {
            Credentials::Anonymous => A::Anonymous,
            Credentials::Basic { user, password } => A::Basic(user.clone(), password.clone()),
            Credentials::Bearer(t) => A::Bearer(t.clone()),
        }
    }
}

/// Credentials and where they came from (for messages; never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The credentials.
    pub credentials: Credentials,
    /// `REGISTRY_AUTH`, `/home/u/.docker/config.json (auths."localhost:5000")`, ...
    pub origin: String,
}

/// The credentials for `registry` (`host[:port]` as in the reference),
/// from the process environment and the Docker config it points to.
pub fn resolve(registry: &str) -> Result<Found, RegistryError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    resolve_from(registry, &var, docker_config_path(&var).as_deref())
}

/// [`resolve`] with an explicit environment and config path (for tests).
pub fn resolve_from(
    registry: &str,
    var: &dyn Fn(&str) -> Option<String>,
    docker_config: Option<&Path>,
) -> Result<Found, RegistryError> {
    let found = |credentials, origin: &str| Found {
        credentials,
        origin: origin.to_string(),
    };
    if let Some(t) = var(TOKEN_ENV) {
        return Ok(found(Credentials::Bearer(t), TOKEN_ENV));
    }
    match (var(USER_ENV), var(PASSWORD_ENV)) {
        (Some(user), Some(password)) => {
            return Ok(found(Credentials::Basic { user, password }, USER_ENV))
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(RegistryError::BadCredentials {
                origin: format!("{USER_ENV}/{PASSWORD_ENV}"),
                reason: "set both, or neither".into(),
            })
        }
        (None, None) => {}
    }
    if let Some(a) = var(AUTH_ENV) {
        let (user, password) =
            parse_user_password(&a).map_err(|reason| RegistryError::BadCredentials {
                origin: AUTH_ENV.into(),
                reason,
            })?;
        return Ok(found(Credentials::Basic { user, password }, AUTH_ENV));
    }
    if let Some(path) = docker_config {
        if let Some(f) = from_docker_config(path, registry)? {
            return Ok(f);
        }
    }
    Ok(found(Credentials::Anonymous, "no credentials"))
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn docker_config_path(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(d) = var("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    var("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// `user:password` or base64 of it. The error never repeats the value.
fn parse_user_password(v: &str) -> Result<(String, String), String> {
    let plain = if v.contains(':') {
        v.to_string()
    } else {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|_| "is neither user:password nor its base64 form".to_string())?;
        String::from_utf8(bytes)
            .map_err(|_| "decodes to something that is not UTF-8".to_string())?
    };
    match plain.split_once(':') {
        Some((u, p)) if !u.is_empty() => Ok((u.to_string(), p.to_string())),
        _ => Err("must be user:password with a non-empty user".to_string()),
    }
}

/// The host part of a Docker config `auths` key: keys may be
/// `https://host/v1/`, `http://host`, or `host`.
fn config_key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Docker Hub is written `docker.io`, `index.docker.io` or
/// `registry-1.docker.io` in configs; they are the same registry.
fn same_registry(a: &str, b: &str) -> bool {
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    a.eq_ignore_ascii_case(b) || (hub(a) && hub(b))
}

fn from_docker_config(path: &Path, registry: &str) -> Result<Option<Found>, RegistryError> {
    let bad = |reason: String| RegistryError::BadCredentials {
        origin: path.display().to_string(),
        reason,
    };
    let text = match read_small(path) {
        Ok(Some(t)) => t,
        Ok(None) => return Ok(None),
        Err(e) => return Err(bad(e)),
    };
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "invalid JSON at line {} column {}",
            e.line(),
            e.column()
        ))
    })?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let Some((key, entry)) = auths
        .iter()
        .find(|(k, _)| same_registry(config_key_host(k), registry))
    else {
        return Ok(None);
    };
    let origin = format!("{} (auths.{key:?})", path.display());
    let field = |f: &str| {
        entry
            .get(f)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    let credentials = if let Some(a) = field("auth") {
        let (user, password) =
            parse_user_password(a).map_err(|reason| bad(format!("auths.{key:?}.auth {reason}")))?;
        Credentials::Basic { user, password }
    } else if let (Some(u), Some(p)) = (field("username"), field("password")) {
        Credentials::Basic {
            user: u.to_string(),
            password: p.to_string(),
        }
    } else if let Some(t) = field("registrytoken") {
        Credentials::Bearer(t.to_string())
    } else {
        return Ok(None);
    };
    Ok(Some(Found {
        credentials,
        origin,
    }))
}

/// Reads a small regular file; `None` when missing. Refuses FIFOs and
/// other special files (a read would block) and oversized files.
fn read_small(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    let md = f.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !md.is_file() {
        return Err("not a regular file".into());
    }
    if md.len() > MAX_CONFIG {
        return Err(format!("larger than {MAX_CONFIG} bytes"));
    }
    let mut s = String::new();
    f.take(MAX_CONFIG)
        .read_to_string(&mut s)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(Some(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            user: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn environment_wins_in_documented_order() {
        let r = |e: &[(&str, &str)]| resolve_from("localhost:5000", &env(e), None).unwrap();
        assert_eq!(r(&[]).credentials, Credentials::Anonymous);
        assert_eq!(r(&[(AUTH_ENV, "u:p:w")]).credentials, basic("u", "p:w"));
        // base64("alice:s3cret")
        assert_eq!(
            r(&[(AUTH_ENV, "YWxpY2U6czNjcmV0")]).credentials,
            basic("alice", "s3cret")
        );
        let both = r(&[(USER_ENV, "a"), (PASSWORD_ENV, "b"), (AUTH_ENV, "x:y")]);
        assert_eq!(both.credentials, basic("a", "b"));
        assert_eq!(both.origin, USER_ENV);
        let tok = r(&[(TOKEN_ENV, "t0k"), (USER_ENV, "a"), (PASSWORD_ENV, "b")]);
        assert_eq!(tok.credentials, Credentials::Bearer("t0k".into()));
        let e = resolve_from("r", &env(&[(USER_ENV, "a")]), None).unwrap_err();
        assert!(e.to_string().contains(PASSWORD_ENV), "{e}");
        let e = resolve_from("r", &env(&[(AUTH_ENV, "not base64!")]), None).unwrap_err();
        assert!(
            e.to_string().contains(AUTH_ENV) && !e.to_string().contains("not base64!"),
            "{e}"
        );
    }

    #[test]
    fn docker_config_auths_by_registry() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths": {
                "localhost:5000": {"auth": "YWxpY2U6czNjcmV0"},
                "http://127.0.0.1:6000/v2/": {"username": "bob", "password": "pw"},
                "https://index.docker.io/v1/": {"auth": "aHViOmh1Yg=="},
                "tok.example.com": {"registrytoken": "abc"},
                "empty.example.com": {}
            }, "credsStore": "desktop"}"#,
        )
        .unwrap();
        let r = |reg: &str| resolve_from(reg, &env(&[]), Some(&p)).unwrap();
        assert_eq!(r("localhost:5000").credentials, basic("alice", "s3cret"));
        assert!(r("localhost:5000").origin.contains("config.json"));
        assert_eq!(r("127.0.0.1:6000").credentials, basic("bob", "pw"));
        assert_eq!(r("docker.io").credentials, basic("hub", "hub"));
        assert_eq!(
            r("tok.example.com").credentials,
            Credentials::Bearer("abc".into())
        );
        assert_eq!(r("empty.example.com").credentials, Credentials::Anonymous);
        assert_eq!(r("other:1").credentials, Credentials::Anonymous);
        // The environment beats the file.
        let e = resolve_from("localhost:5000", &env(&[(AUTH_ENV, "x:y")]), Some(&p)).unwrap();
        assert_eq!(e.credentials, basic("x", "y"));
        // A missing file is no credentials; a broken one is an error naming it.
        let missing = d.path().join("none.json");
        assert_eq!(
            resolve_from("a", &env(&[]), Some(&missing))
                .unwrap()
                .credentials,
            Credentials::Anonymous
        );
        std::fs::write(&p, "{\"auths\": ").unwrap();
        let e = resolve_from("a", &env(&[]), Some(&p))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("config.json") && e.contains("invalid JSON"),
            "{e}"
        );
        std::fs::write(&p, r#"{"auths": {"a": {"auth": "!!!"}}}"#).unwrap();
        let e = resolve_from("a", &env(&[]), Some(&p))
            .unwrap_err()
            .to_string();
        assert!(e.contains("auth") && !e.contains("!!!"), "{e}");
    }

    #[test]
    fn secrets_never_in_debug() {
        let s = format!("{:?}", basic("u", "hunter2"));
        assert!(!s.contains("hunter2"), "{s}");
        assert!(!format!("{:?}", Credentials::Bearer("tok".into())).contains("tok"));
    }
}
