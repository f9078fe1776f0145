//! Published checksums: `sha256sum` files and GitHub's `digest` field.

use super::SourceError;

/// Normalises a 64-character hex sha256 to lowercase, or says why not.
pub fn parse_hex(origin: &str, hex: &str) -> Result<String, SourceError> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SourceError::BadChecksum {
            origin: origin.to_string(),
            reason: format!("{hex:?} is not 64 hexadecimal digits"),
        });
    }
    Ok(hex.to_ascii_lowercase())
}

/// Parses GitHub's asset `digest`, `sha256:<hex>`. Another algorithm is
/// `Ok(None)` (fall back to a `.sha256` asset); a malformed sha256 is an
/// error.
pub fn parse_digest(origin: &str, digest: &str) -> Result<Option<String>, SourceError> {
    match digest.split_once(':') {
        Some((algo, hex)) if algo.eq_ignore_ascii_case("sha256") => {
            parse_hex(origin, hex).map(Some)
        }
        Some(_) => Ok(None),
        None => Err(SourceError::BadChecksum {
            origin: origin.to_string(),
            reason: format!("digest {digest:?} is not ALGORITHM:HEX"),
        }),
    }
}

/// Finds the checksum of `file_name` in `sha256sum` output: lines of
/// `<hex>  <name>` (or `<hex> *<name>` in binary mode). A file with a single
/// entry, or a bare hash, is accepted whatever name it gives, since many
/// publishers write the build path there.
pub fn parse_sha256sum(origin: &str, text: &str, file_name: &str) -> Result<String, SourceError> {
    let entries: Vec<(&str, &str)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| match l.split_once(char::is_whitespace) {
            Some((hex, name)) => (hex, name.trim().trim_start_matches('*')),
            None => (l, ""),
        })
        .collect();
    let base = |n: &str| n.rsplit('/').next().unwrap_or(n).to_string();
    let chosen = match entries.as_slice() {
        [] => None,
        [(hex, _)] => Some(*hex),
        many => many
            .iter()
            .find(|(_, n)| base(n) == file_name)
            .map(|(h, _)| *h),
    };
    match chosen {
        Some(hex) => parse_hex(origin, hex),
        None => Err(SourceError::BadChecksum {
            origin: origin.to_string(),
            reason: format!("no entry for {file_name}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn sha256sum_formats() {
        let img = "core-devops-linux-amd64.qcow2";
        assert_eq!(
            parse_sha256sum("t", &format!("{H}  {img}\n"), img).unwrap(),
            H
        );
        assert_eq!(
            parse_sha256sum("t", &format!("{H} *{img}"), img).unwrap(),
            H
        );
        assert_eq!(parse_sha256sum("t", H, img).unwrap(), H);
        // Upper case is normalised.
        assert_eq!(parse_sha256sum("t", &H.to_uppercase(), img).unwrap(), H);
        // A single entry with a build path is accepted.
        assert_eq!(
            parse_sha256sum("t", &format!("{H}  out/build/{img}"), img).unwrap(),
            H
        );
        // Several entries: the one for our file.
        let other = "a".repeat(64);
        let multi = format!("{other}  other.iso\n{H}  ./{img}\n");
        assert_eq!(parse_sha256sum("t", &multi, img).unwrap(), H);
        let e = parse_sha256sum("t", &format!("{other}  a\n{other}  b\n"), img).unwrap_err();
        assert!(e.to_string().contains("no entry"), "{e}");
        assert!(parse_sha256sum("t", "", img).is_err());
        let e = parse_sha256sum("x.sha256", "abc  f", img).unwrap_err();
        assert!(e.to_string().contains("x.sha256"), "{e}");
    }

    #[test]
    fn github_digest() {
        assert_eq!(
            parse_digest("d", &format!("sha256:{H}")).unwrap(),
            Some(H.into())
        );
        assert_eq!(
            parse_digest("d", &format!("SHA256:{H}")).unwrap(),
            Some(H.into())
        );
        assert_eq!(parse_digest("d", "sha512:abcd").unwrap(), None);
        assert!(parse_digest("d", "sha256:abcd").is_err());
        assert!(parse_digest("d", H).is_err());
    }
}
