//! Copying files and directories between the host and a guest, with
//! `docker cp` semantics.
//!
//! Where a copy lands follows Docker's rules ([`place`]): a file onto a
//! missing path creates it, onto a file overwrites it, into a directory
//! keeps its name; a directory onto a missing path becomes that path, into
//! a directory becomes a subdirectory, or (source ending in `/.`) has its
//! contents merged there; a destination ending in `/` must be an existing
//! directory. Modes and times always travel; owners only with `archive`
//! (`cp -a`), otherwise files belong to the receiving side's user (root in
//! the guest, the caller on the host).
//!
//! The data moves as a tar stream: built on the host with the `tar` crate
//! and read by `tar` in the guest, or the reverse, so the guest needs `sh`
//! and `tar` (busybox has both). Over SSH the stream goes through ssh's
//! stdin/stdout; over the guest agent, a single regular file goes straight
//! through `guest-file-write`/`guest-file-read` in chunks, and anything
//! else as an archive in a temporary guest file.

mod archive;
pub(crate) mod chunks;
mod endpoint;
pub(crate) mod probe;

pub use archive::{build_archive, extract_archive, Extracted};
pub use endpoint::CopyEndpoint;

use crate::transport::Transport;

/// Options of `copy_to`/`copy_from`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Keep owners (uid/gid) too, like `docker cp -a`. Modes and times are
    /// always kept. On the host, owners can only be set when running as
    /// root.
    pub archive: bool,
    /// The guest agent, SSH, or (default) the agent when it answers.
    pub transport: Transport,
}

/// Copy failures that are about the paths. Each names the path as the
/// caller wrote it (`ID:PATH` for a guest path).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The source does not exist.
    #[error("cannot copy {location}: no such file or directory")]
    NotFound {
        /// The source.
        location: String,
    },
    /// A path ending in `/` or `/.` names something that is not a directory.
    #[error("cannot copy {location}: not a directory")]
    NotADirectory {
        /// The path.
        location: String,
    },
    /// A directory cannot replace a file.
    #[error("cannot copy directory {source_location} onto file {location}: the destination must be a directory or not exist")]
    DirectoryOntoFile {
        /// The source directory.
        source_location: String,
        /// The destination file.
        location: String,
    },
    /// The directory the copy would land in does not exist.
    #[error("cannot copy to {location}: directory {directory} does not exist")]
    NoDestination {
        /// The destination as given.
        location: String,
        /// The directory that is missing.
        directory: String,
    },
    /// The container is not running.
    #[error("cannot copy {location}: container {id} is not running")]
    NotRunning {
        /// The container.
        id: String,
        /// The guest side of the copy.
        location: String,
    },
    /// The guest's `sh`/`tar` failed, or sent something unsafe.
    #[error("copy {location}: {message}")]
    Guest {
        /// The guest side of the copy.
        location: String,
        /// What happened.
        message: String,
    },
    /// Reading or writing on the host failed.
    #[error("copy {}: {source}", path.display())]
    Host {
        /// The host path.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Nothing there.
    Missing,
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link, device, FIFO or socket.
    Other,
}

/// Where a copy lands: the entries go into `dir` (which exists), the
/// source named `name` there, or (`None`) only the source directory's
/// contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Existing directory that receives the copy.
    pub dir: String,
    /// Name of the copied file or directory in `dir`; `None` merges a
    /// directory's contents into `dir`.
    pub name: Option<String>,
}

/// Whether `path` ends in `/.`: a directory's contents, not the directory.
pub fn contents_only(path: &str) -> bool {
    path == "." || path.ends_with("/.")
}

/// Whether `path` can only name a directory (ends in `/` or `/.`).
pub fn names_directory(path: &str) -> bool {
    path.ends_with('/') || contents_only(path)
}

/// `path` without trailing `/` and `/.` (but `/` stays `/`).
pub fn trimmed(path: &str) -> &str {
    let mut p = path;
    loop {
        // "a/" → "a", "a/." → "a/" (then "a"); "/" stays.
        if (p.len() > 1 && p.ends_with('/')) || p.ends_with("/.") {
            p = &p[..p.len() - 1];
        } else {
            return p;
        }
    }
}

/// The last component of `path` (`None` for `/`).
pub fn base_name(path: &str) -> Option<&str> {
    let t = trimmed(path);
    t.rsplit('/')
        .next()
        .filter(|b| !b.is_empty() && *b != "." && *b != "..")
}

/// The directory holding `path`.
pub fn parent(path: &str) -> String {
    let t = trimmed(path);
    match t.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => t[..i].into(),
        None => ".".into(),
    }
}

/// Where copying `src` (of kind `src_kind`, after following a trailing
/// slash) onto `dst` (of kind `dst_kind`, symlinks followed) lands, by
/// `docker cp`'s rules. `parent_is_dir` says whether `dst`'s parent is an
/// existing directory. `src_at` and `dst_at` name the two sides in errors.
pub fn place(
    src: &str,
    src_kind: Kind,
    dst: &str,
    dst_kind: Kind,
    parent_is_dir: bool,
    src_at: &str,
    dst_at: &str,
) -> Result<Placement, CopyError> {
    let src_dir = match src_kind {
        Kind::Missing => {
            return Err(CopyError::NotFound {
                location: src_at.into(),
            })
        }
        Kind::Dir => true,
        _ if names_directory(src) => {
            return Err(CopyError::NotADirectory {
                location: src_at.into(),
            })
        }
        _ => false,
    };
    let new_name = || base_name(dst).map(str::to_string);
    match dst_kind {
        Kind::Dir => Ok(Placement {
            dir: trimmed(dst).into(),
            name: if contents_only(src) {
                None
            } else {
                base_name(src).map(str::to_string)
            },
        }),
        Kind::File | Kind::Other if src_dir => Err(CopyError::DirectoryOntoFile {
            source_location: src_at.into(),
            location: dst_at.into(),
        }),
        Kind::File | Kind::Other if names_directory(dst) => Err(CopyError::NotADirectory {
            location: dst_at.into(),
        }),
        Kind::File | Kind::Other => Ok(Placement {
            dir: parent(dst),
            name: new_name(),
        }),
        Kind::Missing if !src_dir && dst.ends_with('/') => Err(CopyError::NoDestination {
            location: dst_at.into(),
            directory: trimmed(dst).into(),
        }),
        Kind::Missing if !parent_is_dir => Err(CopyError::NoDestination {
            location: dst_at.into(),
            directory: parent(dst),
        }),
        Kind::Missing => Ok(Placement {
            dir: parent(dst),
            name: new_name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(src: &str, sk: Kind, dst: &str, dk: Kind) -> Result<Placement, CopyError> {
        place(src, sk, dst, dk, true, src, dst)
    }
    fn at(dir: &str, name: Option<&str>) -> Placement {
        Placement {
            dir: dir.into(),
            name: name.map(Into::into),
        }
    }

    #[test]
    fn a_file_follows_docker_cp_rules() {
        // Missing destination: created under that name.
        assert_eq!(
            p("/h/a.txt", Kind::File, "/g/b.txt", Kind::Missing).unwrap(),
            at("/g", Some("b.txt"))
        );
        // Missing destination ending in '/': the directory must exist.
        let e = p("/h/a.txt", Kind::File, "/g/new/", Kind::Missing).unwrap_err();
        assert!(matches!(e, CopyError::NoDestination { .. }), "{e}");
        assert!(e.to_string().contains("/g/new"), "{e}");
        // Existing file: overwritten.
        assert_eq!(
            p("a.txt", Kind::File, "/g/b", Kind::File).unwrap(),
            at("/g", Some("b"))
        );
        // Existing directory: copied into it under its own name.
        assert_eq!(
            p("/h/a.txt", Kind::File, "/g/", Kind::Dir).unwrap(),
            at("/g", Some("a.txt"))
        );
        assert_eq!(
            p("/h/a.txt", Kind::File, "/", Kind::Dir).unwrap(),
            at("/", Some("a.txt"))
        );
        // A file named like a directory.
        let e = p("/h/a.txt/", Kind::File, "/g", Kind::Dir).unwrap_err();
        assert!(matches!(e, CopyError::NotADirectory { .. }), "{e}");
        // Missing parent.
        let e = place(
            "/h/a",
            Kind::File,
            "/no/such/b",
            Kind::Missing,
            false,
            "/h/a",
            "c1:/no/such/b",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("c1:/no/such/b") && e.to_string().contains("/no/such"),
            "{e}"
        );
        // Missing source names the path as written.
        let e = place("/x", Kind::Missing, "/g", Kind::Dir, true, "c1:/x", "/g").unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot copy c1:/x: no such file or directory"
        );
    }

    #[test]
    fn a_directory_follows_docker_cp_rules() {
        // Missing destination: becomes that directory.
        assert_eq!(
            p("/h/d", Kind::Dir, "/g/new", Kind::Missing).unwrap(),
            at("/g", Some("new"))
        );
        assert_eq!(
            p("/h/d/.", Kind::Dir, "/g/new/", Kind::Missing).unwrap(),
            at("/g", Some("new"))
        );
        // Onto a file: refused, naming both.
        let e = p("/h/d", Kind::Dir, "/g/f", Kind::File).unwrap_err();
        assert!(matches!(e, CopyError::DirectoryOntoFile { .. }));
        assert!(
            e.to_string().contains("/h/d") && e.to_string().contains("/g/f"),
            "{e}"
        );
        // Into a directory: as a subdirectory, or its contents with "/.".
        assert_eq!(
            p("/h/d/", Kind::Dir, "/g", Kind::Dir).unwrap(),
            at("/g", Some("d"))
        );
        assert_eq!(
            p("/h/d/.", Kind::Dir, "/g/", Kind::Dir).unwrap(),
            at("/g", None)
        );
        assert_eq!(p(".", Kind::Dir, "/g", Kind::Dir).unwrap(), at("/g", None));
    }

    #[test]
    fn path_helpers() {
        assert_eq!(trimmed("/a/b/./"), "/a/b");
        assert_eq!(trimmed("/"), "/");
        assert_eq!(trimmed("/."), "/");
        assert_eq!(base_name("/a/b/"), Some("b"));
        assert_eq!(base_name("/"), None);
        assert_eq!(parent("/a/b/"), "/a");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("a"), ".");
        assert!(contents_only("/a/.") && !contents_only("/a/"));
    }
}
