//! The host side of a copy's tar stream: building one from host files, and
//! unpacking one a guest sent, never outside the destination directory.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use tar::{Archive, Builder, EntryType, Header, HeaderMode};

/// Writes `src` (not following a symlink at `src`) as a tar stream into
/// `out`. With `name` the source appears under that name (a directory with
/// everything below it); without, a directory's children appear at the
/// top. Owners become root (uid/gid 0) unless `owners` keeps them. Data is
/// streamed file by file, so memory does not grow with file size.
pub fn build_archive(
    src: &Path,
    name: Option<&str>,
    owners: bool,
    out: impl Write,
) -> io::Result<()> {
    let mut b = Builder::new(out);
    b.follow_symlinks(false);
    match name {
        Some(n) => append(&mut b, src, Path::new(n), owners)?,
        None => {
            for (path, name) in children(src)? {
                append(&mut b, &path, Path::new(&name), owners)?;
            }
        }
    }
    b.into_inner()?.flush()
}

/// A directory's entries, sorted by name so archives are reproducible.
fn children(dir: &Path) -> io::Result<Vec<(PathBuf, std::ffi::OsString)>> {
    let mut v = fs::read_dir(dir)?
        .map(|e| e.map(|e| (e.path(), e.file_name())))
        .collect::<io::Result<Vec<_>>>()?;
    v.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(v)
}

fn append<W: Write>(b: &mut Builder<W>, path: &Path, name: &Path, owners: bool) -> io::Result<()> {
    let context = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    let meta = fs::symlink_metadata(path).map_err(context)?;
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(&meta, HeaderMode::Complete);
    if !owners {
        h.set_uid(0);
        h.set_gid(0);
    }
    let ft = meta.file_type();
    if ft.is_dir() {
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())?;
        for (child, child_name) in children(path).map_err(context)? {
            append(b, &child, &name.join(child_name), owners)?;
        }
    } else if ft.is_symlink() {
        h.set_size(0);
        let target = fs::read_link(path).map_err(context)?;
        b.append_link(&mut h, name, target)?;
    } else if ft.is_file() {
        let f = fs::File::open(path).map_err(context)?;
        // Exactly the size in the header, even if the file grows meanwhile.
        let mut data = f.take(meta.len());
        b.append_data(&mut h, name, &mut data)?;
        if data.limit() != 0 {
            return Err(context(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being copied",
            )));
        }
    } else {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_socket() {
            return Ok(()); // a socket cannot be copied; tar skips them too
        }
        // FIFOs and devices: the header says what to make.
        h.set_size(0);
        b.append_data(&mut h, name, io::empty())?;
    }
    Ok(())
}

/// What an extraction wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Entries written.
    pub entries: u64,
    /// Bytes of file data written.
    pub bytes: u64,
}

/// Unpacks a tar stream from a guest into the host directory `into`. With
/// `rename = Some((from, to))` every entry must lie under the top-level
/// name `from`, which becomes `to`; without, the stream holds a directory's
/// contents (`./...`). Modes and times are kept; owners only with `owners`
/// (which needs root). An entry that would land outside `into` (`..`, an
/// absolute path, or a path through a symlink) stops the extraction: the
/// guest is not trusted.
pub fn extract_archive(
    input: impl Read,
    into: &Path,
    rename: Option<(&str, &str)>,
    owners: bool,
) -> io::Result<Extracted> {
    let mut ar = Archive::new(input);
    ar.set_preserve_ownerships(owners);
    ar.set_overwrite(true);
    let mut done = Extracted::default();
    // Directory modes and times are applied last: a read-only directory
    // must not stop its own contents, and writing them changes its mtime.
    let mut dirs: Vec<(PathBuf, Header)> = Vec::new();
    for entry in ar.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let Some(rel) = rewrite(&raw, rename)? else {
            continue;
        };
        let target = into.join(&rel);
        no_symlink_between(into, &rel)?;
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("cannot replace {} with a directory", target.display()),
                        ))
                    }
                    Err(_) => {
                        use std::os::unix::fs::DirBuilderExt;
                        fs::DirBuilder::new().mode(0o700).create(&target)?;
                    }
                }
                dirs.push((target, entry.header().clone()));
            }
            EntryType::Link => {
                let link = entry
                    .link_name()?
                    .ok_or_else(|| unsafe_entry(&raw, "a hard link without a target"))?;
                let link_rel = rewrite(&link, rename)?
                    .ok_or_else(|| unsafe_entry(&raw, "a hard link to the top directory"))?;
                no_symlink_between(into, &link_rel)?;
                let _ = fs::remove_file(&target);
                fs::hard_link(into.join(link_rel), &target)?;
            }
            EntryType::GNULongName
            | EntryType::GNULongLink
            | EntryType::XHeader
            | EntryType::XGlobalHeader => continue,
            _ => {
                if fs::symlink_metadata(&target).is_ok_and(|m| m.is_dir()) {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("cannot replace directory {} with a file", target.display()),
                    ));
                }
                entry.set_preserve_permissions(true);
                entry.set_preserve_mtime(true);
                done.bytes += entry.header().entry_size().unwrap_or(0);
                entry.unpack(&target)?;
            }
        }
        done.entries += 1;
    }
    for (dir, h) in dirs.iter().rev() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(mode) = h.mode() {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if let Ok(mtime) = h.mtime() {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
            fs::File::open(dir)?.set_modified(t)?;
        }
        if owners {
            if let (Ok(uid), Ok(gid)) = (h.uid(), h.gid()) {
                std::os::unix::fs::chown(dir, Some(uid as u32), Some(gid as u32))?;
            }
        }
    }
    Ok(done)
}

fn unsafe_entry(raw: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("refusing archive entry {}: {why}", raw.display()),
    )
}

/// The entry's path below the destination, renamed; `None` for the
/// stream's own top directory (`.`) in contents mode.
fn rewrite(raw: &Path, rename: Option<(&str, &str)>) -> io::Result<Option<PathBuf>> {
    let mut parts = raw.components().filter(|c| !matches!(c, Component::CurDir));
    let mut out = PathBuf::new();
    if let Some((from, to)) = rename {
        match parts.next() {
            Some(Component::Normal(first)) if first == from => out.push(to),
            _ => return Err(unsafe_entry(raw, &format!("not under {from}"))),
        }
    }
    for c in parts {
        match c {
            Component::Normal(n) => out.push(n),
            _ => return Err(unsafe_entry(raw, "it leaves the destination")),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Refuses `rel` when one of its parent directories under `into` is a
/// symlink (which an earlier entry may have planted to escape).
fn no_symlink_between(into: &Path, rel: &Path) -> io::Result<()> {
    let mut at = into.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for c in &parts[..parts.len().saturating_sub(1)] {
        at.push(c);
        if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(unsafe_entry(rel, &format!("{} is a symlink", at.display())));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("d/sub")).unwrap();
        fs::write(root.join("d/a.txt"), b"alpha").unwrap();
        fs::write(root.join("d/sub/b.bin"), vec![7u8; 70_000]).unwrap();
        fs::set_permissions(root.join("d/sub/b.bin"), fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("d/link")).unwrap();
    }

    #[test]
    fn a_directory_round_trips_with_a_new_name_modes_and_links() {
        let src = tempfile::tempdir().unwrap();
        tree(src.path());
        let mut tar = Vec::new();
        build_archive(&src.path().join("d"), Some("d"), false, &mut tar).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let got = extract_archive(&tar[..], dst.path(), Some(("d", "copy")), false).unwrap();
        assert_eq!(got.bytes, 70_005);
        let c = dst.path().join("copy");
        assert_eq!(fs::read(c.join("a.txt")).unwrap(), b"alpha");
        assert_eq!(fs::read(c.join("sub/b.bin")).unwrap().len(), 70_000);
        let mode = fs::metadata(c.join("sub/b.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o751);
        assert_eq!(fs::read_link(c.join("link")).unwrap(), Path::new("a.txt"));
        // Contents mode merges into an existing directory.
        let mut tar = Vec::new();
        build_archive(&src.path().join("d"), None, false, &mut tar).unwrap();
        let names: Vec<String> = Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert!(
            names.contains(&"a.txt".to_string()) && names.contains(&"sub/b.bin".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn owners_are_root_unless_kept() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("f"), b"x").unwrap();
        let uid_of = |owners| {
            let mut tar = Vec::new();
            build_archive(&src.path().join("f"), Some("f"), owners, &mut tar).unwrap();
            let mut ar = Archive::new(&tar[..]);
            let e = ar.entries().unwrap().next().unwrap().unwrap();
            e.header().uid().unwrap()
        };
        assert_eq!(uid_of(false), 0);
        assert_eq!(uid_of(true), u64::from(nix::unistd::getuid().as_raw()));
    }

    fn raw_tar(entries: &[(&str, EntryType, &str)]) -> Vec<u8> {
        // Headers are written by hand: the tar crate's own setters refuse
        // the hostile names a guest could send.
        let mut out = Vec::new();
        for (name, kind, link) in entries {
            let mut h = Header::new_old();
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            h.set_size(0);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
        }
        out.extend_from_slice(&[0u8; 1024]);
        out
    }

    #[test]
    fn hostile_entries_are_refused() {
        for bad in [
            raw_tar(&[("x/../../evil", EntryType::Regular, "")]),
            raw_tar(&[("/etc/evil", EntryType::Regular, "")]),
            raw_tar(&[("y/evil", EntryType::Regular, "")]),
            raw_tar(&[
                ("x/l", EntryType::Symlink, "/tmp"),
                ("x/l/evil", EntryType::Regular, ""),
            ]),
            raw_tar(&[("x/h", EntryType::Link, "../../etc/passwd")]),
        ] {
            let dst = tempfile::tempdir().unwrap();
            let e = extract_archive(&bad[..], dst.path(), Some(("x", "x")), false).unwrap_err();
            assert!(e.to_string().contains("refusing"), "{e}");
        }
    }
}
