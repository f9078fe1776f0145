//! The two sides of `cp SRC DST` as a user writes them.

use std::path::PathBuf;

use crate::error::{Error, Result};

/// One side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyEndpoint {
    /// A host path (relative to the current directory).
    Host(PathBuf),
    /// `CONTAINER:PATH`: a path in a container (relative paths start at
    /// the guest's `/`, as with `docker cp`).
    Guest {
        /// Container ID, ID prefix or name.
        container: String,
        /// Absolute guest path.
        path: String,
    },
}

impl CopyEndpoint {
    /// Parses `CONTAINER:PATH` or a host path. As with `docker cp`, a
    /// colon after something that looks like a path (contains `/`, or is
    /// empty) is part of a host path: write `./a:b` for a host file `a:b`.
    pub fn parse(arg: &str) -> Result<Self> {
        if arg.is_empty() {
            return Err(Error::invalid("copy path", arg, "must not be empty"));
        }
        match arg.split_once(':') {
            Some((container, path)) if !container.is_empty() && !container.contains('/') => {
                if path.is_empty() {
                    return Err(Error::invalid(
                        "copy path",
                        arg,
                        "the path after CONTAINER: is empty (use CONTAINER:/ for the root)",
                    ));
                }
                let path = if path.starts_with('/') {
                    path.to_string()
                } else {
                    format!("/{path}")
                };
                Ok(CopyEndpoint::Guest {
                    container: container.to_string(),
                    path,
                })
            }
            _ => Ok(CopyEndpoint::Host(PathBuf::from(arg))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_and_host_paths() {
        assert_eq!(
            CopyEndpoint::parse("web:/etc/hosts").unwrap(),
            CopyEndpoint::Guest {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(
            CopyEndpoint::parse("0a1b2c3d:tmp/x/").unwrap(),
            CopyEndpoint::Guest {
                container: "0a1b2c3d".into(),
                path: "/tmp/x/".into()
            }
        );
        assert_eq!(
            CopyEndpoint::parse("./a:b").unwrap(),
            CopyEndpoint::Host("./a:b".into())
        );
        assert_eq!(
            CopyEndpoint::parse("/abs/path").unwrap(),
            CopyEndpoint::Host("/abs/path".into())
        );
        assert!(CopyEndpoint::parse("web:").is_err());
        assert!(CopyEndpoint::parse("").is_err());
    }
}
