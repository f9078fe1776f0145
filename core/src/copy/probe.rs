//! Looking at guest paths before a copy: one `sh` run that reports type,
//! mode, owner and mtime of each path.

use super::Kind;

/// The guest script: arguments are `L` (do not follow a symlink) or `F`
/// (follow), each followed by paths. One line per path: `missing`, or
/// `stat -c '%f %u %g %Y'` (raw mode in hex, uid, gid, mtime). Without a
/// working `stat` only the type is known.
pub(crate) const SCRIPT: &str = r#"f=L
for x; do
  case $x in L|F) f=$x; continue;; esac
  if [ ! -e "$x" ] && [ ! -L "$x" ]; then echo missing; continue; fi
  if [ "$f" = F ]; then s=$(stat -L -c '%f %u %g %Y' -- "$x" 2>/dev/null)
  else s=$(stat -c '%f %u %g %Y' -- "$x" 2>/dev/null); fi
  if [ -n "$s" ]; then echo "$s"
  elif [ -d "$x" ]; then echo '41ed 0 0 0'
  elif [ -f "$x" ]; then echo '81a4 0 0 0'
  else echo 'a1ff 0 0 0'; fi
done"#;

/// What the script found at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GuestStat {
    pub kind: Kind,
    /// Permission bits (with setuid/setgid/sticky).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
}

impl GuestStat {
    /// Parses one output line; `None` for anything the script never prints.
    pub(crate) fn parse(line: &str) -> Option<GuestStat> {
        if line.trim() == "missing" {
            return Some(GuestStat {
                kind: Kind::Missing,
                mode: 0,
                uid: 0,
                gid: 0,
                mtime: 0,
            });
        }
        let mut f = line.split_whitespace();
        let raw = u32::from_str_radix(f.next()?, 16).ok()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        let mtime = f.next()?.parse().ok()?;
        let kind = match raw & 0o170000 {
            0o040000 => Kind::Dir,
            0o100000 => Kind::File,
            _ => Kind::Other,
        };
        Some(GuestStat {
            kind,
            mode: raw & 0o7777,
            uid,
            gid,
            mtime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse() {
        let s = GuestStat::parse("81ed 1000 100 1700000000").unwrap();
        assert_eq!(
            (s.kind, s.mode, s.uid, s.gid, s.mtime),
            (Kind::File, 0o755, 1000, 100, 1700000000)
        );
        assert_eq!(GuestStat::parse("41ed 0 0 0").unwrap().kind, Kind::Dir);
        assert_eq!(GuestStat::parse("a1ff 0 0 0").unwrap().kind, Kind::Other);
        assert_eq!(GuestStat::parse("missing").unwrap().kind, Kind::Missing);
        assert!(GuestStat::parse("sh: stat: not found").is_none());
    }

    #[test]
    fn the_script_runs_in_a_posix_shell() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), b"x").unwrap();
        std::os::unix::fs::symlink(d.path(), d.path().join("l")).unwrap();
        let p = |n: &str| d.path().join(n).display().to_string();
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                SCRIPT,
                "sh",
                "L",
                &p("f"),
                &p("l"),
                &p("nope"),
                "F",
                &p("l"),
            ])
            .output()
            .unwrap();
        let kinds: Vec<Kind> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| GuestStat::parse(l).unwrap().kind)
            .collect();
        assert_eq!(kinds, [Kind::File, Kind::Other, Kind::Missing, Kind::Dir]);
    }
}
