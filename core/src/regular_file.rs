//! Opening files that must be regular files.
//!
//! A path from the caller or from a file we read (an image, a key, a config
//! file, the state file) may name a directory, a device or a FIFO. Opening
//! a FIFO for reading blocks until someone writes to it — forever, as a
//! hang — and `/dev/zero` never ends. Everything here opens with
//! `O_NONBLOCK` (which regular files ignore), checks the type of what it
//! opened, and says what it found instead of a regular file.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a path could not be opened as a regular file.
#[derive(Debug)]
pub enum OpenError {
    /// Nothing at that path.
    Missing(io::Error),
    /// Something other than a regular file is there (`"a directory"`,
    /// `"a FIFO"`, ...).
    NotRegular(&'static str),
    /// A symbolic link where links are refused.
    Symlink,
    /// Any other failure (permissions, I/O).
    Io(io::Error),
}

impl OpenError {
    /// The end of a message after the path: `is a directory, not a
    /// regular file`, `does not exist`, or the OS error.
    pub fn describe(&self) -> String {
        match self {
            OpenError::Missing(_) => "does not exist".into(),
            OpenError::NotRegular(what) => format!("is {what}, not a regular file"),
            OpenError::Symlink => "is a symbolic link, which is not followed here".into(),
            OpenError::Io(e) => e.to_string(),
        }
    }

    /// The OS error, for callers that wrap it.
    pub fn into_io(self) -> io::Error {
        match self {
            OpenError::Missing(e) | OpenError::Io(e) => e,
            other => io::Error::other(other.describe()),
        }
    }
}

/// What a file type is, for messages: `"a directory"`, `"a FIFO"`, ...
pub fn describe_type(ft: FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn classify(e: io::Error) -> OpenError {
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => OpenError::Missing(e),
        Some(libc::ELOOP) => OpenError::Symlink,
        // O_WRONLY|O_NONBLOCK on a FIFO without a reader.
        Some(libc::ENXIO) => OpenError::NotRegular("a FIFO"),
        Some(libc::EISDIR) => OpenError::NotRegular("a directory"),
        _ => OpenError::Io(e),
    }
}

/// Opens `path` with `opts` (plus `O_NONBLOCK`, and `O_NOFOLLOW` unless
/// `follow_links`) and checks that it is a regular file. Never blocks.
pub fn open_with(
    path: &Path,
    opts: &mut OpenOptions,
    follow_links: bool,
) -> Result<File, OpenError> {
    let mut flags = libc::O_NONBLOCK;
    if !follow_links {
        flags |= libc::O_NOFOLLOW;
    }
    let f = opts.custom_flags(flags).open(path).map_err(classify)?;
    let md = f.metadata().map_err(OpenError::Io)?;
    if !md.is_file() {
        return Err(OpenError::NotRegular(describe_type(md.file_type())));
    }
    Ok(f)
}

/// Opens `path` for reading, following links.
pub fn open(path: &Path) -> Result<File, OpenError> {
    open_with(path, OpenOptions::new().read(true), true)
}

/// Reads a whole regular file of at most `limit` bytes (following links).
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, OpenError> {
    let f = open(path)?;
    let mut out = Vec::new();
    f.take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(OpenError::Io)?;
    if out.len() as u64 > limit {
        return Err(OpenError::Io(io::Error::other(format!(
            "is larger than {limit} bytes"
        ))));
    }
    Ok(out)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(path: &Path, limit: u64) -> Result<String, OpenError> {
    String::from_utf8(read(path, limit)?).map_err(|_| {
        OpenError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "is not valid UTF-8 text",
        ))
    })
}

/// The metadata of `path` (following links) if it is a regular file.
pub fn check(path: &Path) -> Result<Metadata, OpenError> {
    let md = std::fs::metadata(path).map_err(classify)?;
    if !md.is_file() {
        return Err(OpenError::NotRegular(describe_type(md.file_type())));
    }
    Ok(md)
}

/// Whether `path` is a regular file (following links). Unlike
/// `Path::is_file`, says so without ever opening it.
pub fn is_regular(path: &Path) -> bool {
    check(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let t = Instant::now();
        let e = read(&fifo, 100).unwrap_err();
        assert!(t.elapsed() < Duration::from_secs(1));
        assert_eq!(e.describe(), "is a FIFO, not a regular file");
        // Opening a FIFO for writing fails too (no reader), it does not wait.
        let e = open_with(&fifo, OpenOptions::new().write(true), true).unwrap_err();
        assert_eq!(e.describe(), "is a FIFO, not a regular file");
        assert_eq!(
            read(Path::new("/dev/zero"), 10).unwrap_err().describe(),
            "is a character device, not a regular file"
        );
        assert_eq!(
            read(d.path(), 10).unwrap_err().describe(),
            "is a directory, not a regular file"
        );
        assert!(matches!(
            read(&d.path().join("none"), 10),
            Err(OpenError::Missing(_))
        ));
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            open_with(&link, OpenOptions::new().read(true), false),
            Err(OpenError::Symlink)
        ));
        assert!(!is_regular(&link) && !is_regular(&fifo));
    }

    #[test]
    fn size_limit_and_text() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"hello").unwrap();
        assert_eq!(read(&p, 5).unwrap(), b"hello");
        assert!(read(&p, 4)
            .unwrap_err()
            .describe()
            .contains("larger than 4"));
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(read_to_string(&p, 10)
            .unwrap_err()
            .describe()
            .contains("UTF-8"));
    }
}
