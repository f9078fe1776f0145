//! LinuxKit YAML templates: the built-ins embedded in the binary, user and
//! workspace templates on disk, and `${VAR}` / `${VAR:-default}` substitution.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

/// Built-in templates, in listing order. They always win over files on disk
/// so that a stray user file cannot silently change what `core-dev` means.
const BUILTINS: [(&str, &str); 2] = [
    ("core-dev", include_str!("../templates/core-dev.yml")),
    ("server-php", include_str!("../templates/server-php.yml")),
];

/// Description shown for an on-disk template that has no `#` comment.
const DEFAULT_DESCRIPTION: &str = "User-defined template";

/// Errors from looking up, reading or filling in templates.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// No built-in, workspace or user template has this name.
    #[error("template {:?} not found; available templates: {}", crate::error::shown(.name), crate::error::shown_list(.available))]
    NotFound {
        /// The name that was asked for.
        name: String,
        /// Every name that would have been accepted, in listing order.
        available: Vec<String>,
    },
    /// `${VAR}` references without a value; all of them, so one run fixes all.
    #[error("missing required variables: {}", crate::error::shown_list(.names))]
    MissingVariables {
        /// Sorted, deduplicated names.
        names: Vec<String>,
    },
    /// A template directory exists but could not be listed.
    #[error("cannot read template directory {}: {error}", .path.display())]
    ReadDir {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// A template file could not be read (or is not UTF-8).
    #[error("cannot read template file {}: {error}", .path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// A reference whose default holds another reference
    /// (`${A:-${B}}`): not supported, and refused rather than half-expanded.
    #[error("template line {line}: {} has a reference inside its default; nested defaults are not supported — give a literal default", crate::error::shown(.reference))]
    NestedDefault {
        /// The reference as written.
        reference: String,
        /// 1-based line.
        line: usize,
    },
    /// A variable that sizes the VM has a value that cannot be used.
    #[error("invalid template variable {name} {:?}: {reason}", crate::error::shown(.value))]
    InvalidValue {
        /// The variable (`MEMORY`, `CPUS`).
        name: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A template as shown in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template {
    /// Lookup name: the built-in's name or the file stem.
    pub name: String,
    /// First non-empty `#` comment line of the template.
    pub description: String,
    /// Where the template was found; `None` for built-ins.
    pub path: Option<PathBuf>,
    /// Whether the template is embedded in the binary.
    pub builtin: bool,
}

/// Directories searched for on-disk templates; a `None` entry is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateDirs {
    /// Project-local templates (`<cwd>/.core/linuxkit`); wins over `user`.
    pub workspace: Option<PathBuf>,
    /// Per-user templates (`<home>/linuxkit`).
    pub user: Option<PathBuf>,
}

impl TemplateDirs {
    /// Standard locations for the vmcontainer root `home` (`$VMCONTAINER_HOME`
    /// or `~/.core`) and, when known, the current working directory.
    pub fn new(home: &Path, cwd: Option<&Path>) -> Self {
        TemplateDirs {
            workspace: cwd.map(|c| c.join(".core").join("linuxkit")),
            user: Some(crate::Home::new(home).templates_dir()),
        }
    }

    /// The locations every front end uses: `home` or else
    /// `$VMCONTAINER_HOME`/`~/.core`, and `cwd` or else the process's
    /// current directory (none if it cannot be read).
    pub fn resolve(home: Option<&Path>, cwd: Option<&Path>) -> crate::Result<Self> {
        let home = crate::Home::resolve(home)?;
        let cwd = match cwd {
            Some(c) => Some(c.to_path_buf()),
            None => std::env::current_dir().ok(),
        };
        Ok(Self::new(home.root(), cwd.as_deref()))
    }
}

/// Lists built-ins first, then workspace and user templates sorted by name.
/// Files that cannot be read are left out (see [`scan_templates`] for why).
pub fn list_templates(dirs: &TemplateDirs) -> Result<Vec<Template>, TemplateError> {
    Ok(scan_templates(dirs)?.templates)
}

/// What [`scan_templates`] found.
#[derive(Debug)]
pub struct TemplateListing {
    /// Built-ins first, then workspace and user templates sorted by name.
    pub templates: Vec<Template>,
    /// Template files that were skipped (unreadable, not UTF-8, a name
    /// that is not UTF-8), each with why: one bad file must not hide the
    /// others. Front ends show these as warnings.
    pub skipped: Vec<TemplateError>,
}

/// Lists the templates, setting aside files that cannot be read.
pub fn scan_templates(dirs: &TemplateDirs) -> Result<TemplateListing, TemplateError> {
    let mut templates: Vec<Template> = BUILTINS
        .iter()
        .map(|&(n, c)| template(n, c, None))
        .collect();
    let mut skipped = Vec::new();
    let found = disk_templates(dirs, &mut skipped)?;
    for (name, path) in found {
        match read_file(&path) {
            Ok(content) => templates.push(template(&name, &content, Some(path))),
            Err(e) => skipped.push(e),
        }
    }
    Ok(TemplateListing { templates, skipped })
}

/// Finds the template `name` and returns it with its raw content.
pub fn get_template(dirs: &TemplateDirs, name: &str) -> Result<(Template, String), TemplateError> {
    if let Some(&(n, c)) = BUILTINS.iter().find(|(n, _)| *n == name) {
        return Ok((template(n, c, None), c.to_string()));
    }
    let found = disk_templates(dirs, &mut Vec::new())?;
    // Names are matched against directory entries, never joined onto a
    // directory, so a name like `../x` cannot reach outside the template dirs.
    let Some(path) = found.get(name) else {
        let mut available: Vec<String> = BUILTINS.iter().map(|(n, _)| n.to_string()).collect();
        available.extend(found.into_keys());
        return Err(TemplateError::NotFound {
            name: name.to_string(),
            available,
        });
    };
    let content = read_file(path)?;
    Ok((template(name, &content, Some(path.clone())), content))
}

/// Looks up `name` and substitutes `vars` into it (see [`apply_variables`]).
pub fn apply_template(
    dirs: &TemplateDirs,
    name: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let (_, content) = get_template(dirs, name)?;
    apply_variables(&content, vars)
}

/// The VM size a template asks for: its `MEMORY` (MB) and `CPUS` variables
/// as given in `vars`, else their defaults in the template. LinuxKit YAML has
/// no field for either, so `run --template` uses these when the caller set
/// neither. A value that is not a usable number is an error naming it.
pub fn resources(
    content: &str,
    vars: &BTreeMap<String, String>,
) -> Result<(Option<u32>, Option<u32>), TemplateError> {
    let (_, defaults) = extract_variables(content);
    let get = |name: &str, max: u32, reason: &'static str| {
        let Some(v) = vars.get(name).or_else(|| defaults.get(name)) else {
            return Ok(None);
        };
        match v.trim().parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
            _ => Err(TemplateError::InvalidValue {
                name: name.to_string(),
                value: v.clone(),
                reason,
            }),
        }
    };
    Ok((
        get(
            "MEMORY",
            u32::MAX,
            "must be a whole number of MB, at least 1",
        )?,
        get("CPUS", 255, "must be a whole number between 1 and 255")?,
    ))
}

/// Names in `vars` that `content` never references: a `--var` for them
/// would be silently ignored, so front ends warn about each.
pub fn unused_variables(content: &str, vars: &BTreeMap<String, String>) -> Vec<String> {
    let (required, optional) = extract_variables(content);
    vars.keys()
        .filter(|k| !required.contains(k) && !optional.contains_key(*k))
        .cloned()
        .collect()
}

/// Replaces `${VAR}` and `${VAR:-default}` in one pass; values are inserted
/// verbatim, so a value containing `${OTHER}` is not expanded again.
pub fn apply_variables(
    content: &str,
    vars: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(content.len());
    let mut missing = BTreeSet::new();
    let mut nested = None;
    scan(content, |token| match token {
        Token::Literal(text) => out.push_str(text),
        Token::Var { name, default } => match (vars.get(name), default) {
            (Some(value), _) => out.push_str(value),
            (None, Some(default)) => out.push_str(default),
            (None, None) => {
                missing.insert(name.to_string());
            }
        },
        Token::Nested { text, offset } => {
            nested.get_or_insert((text, offset));
        }
    });
    if let Some((text, offset)) = nested {
        return Err(TemplateError::NestedDefault {
            reference: text.to_string(),
            line: content[..offset].matches('\n').count() + 1,
        });
    }
    if missing.is_empty() {
        Ok(out)
    } else {
        Err(TemplateError::MissingVariables {
            names: missing.into_iter().collect(),
        })
    }
}

/// Returns the sorted required names and the optional names with their
/// defaults; a name used both ways is only reported as required, because a
/// value must be supplied for the template to apply.
pub fn extract_variables(content: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let mut required = BTreeSet::new();
    let mut optional = BTreeMap::new();
    scan(content, |token| match token {
        Token::Literal(_) | Token::Nested { .. } => {}
        Token::Var {
            name,
            default: None,
        } => {
            required.insert(name.to_string());
        }
        Token::Var {
            name,
            default: Some(default),
        } => {
            optional
                .entry(name.to_string())
                .or_insert_with(|| default.to_string());
        }
    });
    optional.retain(|name, _| !required.contains(name));
    (required.into_iter().collect(), optional)
}

/// A piece of template text as seen by [`scan`].
enum Token<'a> {
    Literal(&'a str),
    Var {
        name: &'a str,
        default: Option<&'a str>,
    },
    /// `${NAME:-...${...` : a default holding a reference. `text` runs to
    /// the brace that closes it (or the end of the line); `offset` is where
    /// it starts in the content.
    Nested {
        text: &'a str,
        offset: usize,
    },
}

/// Splits `content` into literal text and variable references.
fn scan<'a>(content: &'a str, mut emit: impl FnMut(Token<'a>)) {
    let mut literal_start = 0;
    let mut pos = 0;
    while let Some(offset) = content[pos..].find("${") {
        let start = pos + offset;
        if let Some(len) = nested_reference(&content[start..]) {
            emit(Token::Literal(&content[literal_start..start]));
            emit(Token::Nested {
                text: &content[start..start + len],
                offset: start,
            });
            pos = start + len;
            literal_start = pos;
            continue;
        }
        match parse_reference(&content[start..]) {
            Some((name, default, len)) => {
                emit(Token::Literal(&content[literal_start..start]));
                emit(Token::Var { name, default });
                pos = start + len;
                literal_start = pos;
            }
            // Not a reference we understand: keep it as text, resume after `${`.
            None => pos = start + 2,
        }
    }
    emit(Token::Literal(&content[literal_start..]));
}

/// If `s` (which begins with `${`) is `${NAME:-` whose default contains
/// `${` before its closing brace, the length of the whole construct: up
/// to the brace that balances the first one, else to the end of the line.
fn nested_reference(s: &str) -> Option<usize> {
    let body = &s[2..];
    let name_len = body
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    if name_len == 0 || body.as_bytes()[0].is_ascii_digit() {
        return None;
    }
    let default = body[name_len..].strip_prefix(":-")?;
    let first_close = default.find(['}', '\n']).unwrap_or(default.len());
    if !default[..first_close].contains("${") {
        return None;
    }
    let mut depth = 1usize;
    let bytes = s.as_bytes();
    let mut i = 2;
    while i < bytes.len() && bytes[i] != b'\n' {
        if bytes[i..].starts_with(b"${") {
            depth += 1;
            i += 2;
            continue;
        }
        if bytes[i] == b'}' {
            depth -= 1;
            if depth == 0 {
                return Some(i + 1);
            }
        }
        i += 1;
    }
    Some(i)
}

/// Parses a reference at the start of `s` (which begins with `${`), returning
/// the name, the default and the length consumed.
fn parse_reference(s: &str) -> Option<(&str, Option<&str>, usize)> {
    let body = &s[2..];
    let bytes = body.as_bytes();
    if !bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return None;
    }
    let name_len = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    let (name, rest) = body.split_at(name_len);
    if rest.starts_with('}') {
        return Some((name, None, 2 + name_len + 1));
    }
    let default_text = rest.strip_prefix(":-")?;
    // A default ends at the first `}` on the same line, so an unterminated
    // `${X:-` cannot swallow the rest of the file.
    let end = default_text.find(['}', '\n'])?;
    if default_text.as_bytes()[end] != b'}' {
        return None;
    }
    Some((name, Some(&default_text[..end]), 2 + name_len + 2 + end + 1))
}

/// Text of the first non-empty `#` comment line.
fn describe(content: &str) -> Option<&str> {
    content
        .lines()
        .filter_map(|line| line.trim().strip_prefix('#'))
        .map(|rest| rest.trim_start_matches('#').trim())
        .find(|text| !text.is_empty())
}

/// Listing entry for `content`; no `path` means a built-in.
fn template(name: &str, content: &str, path: Option<PathBuf>) -> Template {
    Template {
        name: name.to_string(),
        description: describe(content).unwrap_or(DEFAULT_DESCRIPTION).to_string(),
        builtin: path.is_none(),
        path,
    }
}

/// Largest template read: LinuxKit YAML is a few kB.
const MAX_TEMPLATE: u64 = 16 << 20;

fn read_file(path: &Path) -> Result<String, TemplateError> {
    crate::regular_file::read_to_string(path, MAX_TEMPLATE).map_err(|e| TemplateError::ReadFile {
        path: path.to_path_buf(),
        error: match e {
            crate::regular_file::OpenError::Io(e) => e,
            other => io::Error::other(other.describe()),
        },
    })
}

/// On-disk templates by name, workspace over user, built-in names removed;
/// entries that cannot be templates are added to `skipped`.
fn disk_templates(
    dirs: &TemplateDirs,
    skipped: &mut Vec<TemplateError>,
) -> Result<BTreeMap<String, PathBuf>, TemplateError> {
    let mut found = BTreeMap::new();
    for dir in [&dirs.workspace, &dirs.user].into_iter().flatten() {
        for (name, path) in scan_dir(dir, skipped)? {
            if !BUILTINS.iter().any(|(n, _)| *n == name) {
                found.entry(name).or_insert(path);
            }
        }
    }
    Ok(found)
}

/// Template files directly in `dir`; when both `x.yml` and `x.yaml` exist the
/// `.yml` one is used, so the choice does not depend on directory order.
fn scan_dir(
    dir: &Path,
    skipped: &mut Vec<TemplateError>,
) -> Result<BTreeMap<String, PathBuf>, TemplateError> {
    let read_err = |source| TemplateError::ReadDir {
        path: dir.to_path_buf(),
        error: source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(read_err)?.path();
        let ext = path.extension().and_then(|e| e.to_str());
        if !matches!(ext, Some("yml" | "yaml")) || !crate::regular_file::is_regular(&path) {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            skipped.push(TemplateError::ReadFile {
                error: io::Error::other("its name is not valid UTF-8"),
                path,
            });
            continue;
        };
        let keep_existing = found.get(stem).is_some_and(|_| ext == Some("yaml"));
        if !keep_existing {
            found.insert(stem.to_string(), path.clone());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn write(dir: &Path, file: &str, content: &str) -> PathBuf {
        fs::create_dir_all(dir).unwrap();
        let path = dir.join(file);
        fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn substitutes_required_and_default_values() {
        let out = apply_variables("a=${A} b=${B:-two} c=${C:-}!", &vars(&[("A", "1")])).unwrap();
        assert_eq!(out, "a=1 b=two c=!");
        let out = apply_variables("b=${B:-two}", &vars(&[("B", "given")])).unwrap();
        assert_eq!(out, "b=given");
        // An empty value is still a value: it satisfies `${A}` and beats a default.
        let out = apply_variables("[${A}][${B:-dflt}]", &vars(&[("A", ""), ("B", "")])).unwrap();
        assert_eq!(out, "[][]");
    }

    #[test]
    fn substituted_values_are_not_expanded_again() {
        let v = vars(&[("A", "${B}"), ("B", "oops")]);
        assert_eq!(apply_variables("${A}", &v).unwrap(), "${B}");
        let v = vars(&[("A", "${MISSING}")]);
        assert_eq!(apply_variables("${A}", &v).unwrap(), "${MISSING}");
    }

    #[test]
    fn nested_defaults_are_refused_with_their_line() {
        let v = vars(&[("A", "a"), ("B", "b")]);
        for (text, shown, line) in [
            ("x: ${A:-${B}}\n", "${A:-${B}}", 1),
            ("one\ntwo: ${X:-${B}", "${X:-${B}", 2),
            ("${X:-pre${B:-${C}}post} tail", "${X:-pre${B:-${C}}post}", 1),
        ] {
            let e = apply_variables(text, &v).unwrap_err();
            match &e {
                TemplateError::NestedDefault { reference, line: l } => {
                    assert_eq!((reference.as_str(), *l), (shown, line), "{text}")
                }
                other => panic!("{text}: {other:?}"),
            }
            assert!(e.to_string().contains("nested"), "{e}");
        }
        // A `${` after the default's closing brace is not nesting.
        assert_eq!(apply_variables("${X:-d}${B}", &v).unwrap(), "db");
        let (_, optional) = extract_variables("${A:-${B}} ${C:-c}");
        assert_eq!(optional, vars(&[("C", "c")]));
    }

    #[test]
    fn unused_and_unusable_variables_are_found() {
        let t = "m: ${MEMORY:-2048}\nk: ${KEY}\n";
        let v = vars(&[("MEMORY", "512"), ("KEY", "k"), ("TYPO", "x")]);
        assert_eq!(unused_variables(t, &v), ["TYPO"]);
        let e = resources(t, &vars(&[("MEMORY", "abc")])).unwrap_err();
        assert!(
            e.to_string().contains("MEMORY") && e.to_string().contains("\"abc\""),
            "{e}"
        );
        assert!(resources("${CPUS:-0}", &BTreeMap::new()).is_err());
        assert!(resources("${CPUS:-300}", &BTreeMap::new()).is_err());
        assert!(resources("${MEMORY:-lots}", &BTreeMap::new()).is_err());
    }

    #[test]
    fn reports_all_missing_names_in_one_error() {
        let err = apply_variables("${Z} ${A} ${Z} ${OK:-x} ${M}", &BTreeMap::new()).unwrap_err();
        match &err {
            TemplateError::MissingVariables { names } => assert_eq!(names, &["A", "M", "Z"]),
            other => panic!("unexpected error {other:?}"),
        }
        assert_eq!(err.to_string(), "missing required variables: A, M, Z");
    }

    #[test]
    fn invalid_references_stay_literal() {
        let text = "$A ${1X} ${} ${A-b} ${A:=b} ${A B} ${ ${unterminated ${X:-no\nend} $${Y}";
        let out = apply_variables(text, &vars(&[("Y", "y")])).unwrap();
        assert_eq!(
            out,
            "$A ${1X} ${} ${A-b} ${A:=b} ${A B} ${ ${unterminated ${X:-no\nend} $y"
        );
        // Non-ASCII text around references and `_`/digits inside names.
        let out = apply_variables("é${_a1}ü${B_2:-ß}", &vars(&[("_a1", "ñ")])).unwrap();
        assert_eq!(out, "éñüß");
    }

    #[test]
    fn extracts_required_and_optional_names() {
        let (required, optional) =
            extract_variables("${B} ${A} ${B} ${C:-3} ${D:-} ${A:-1} ${C:-other} $E ${1F}");
        assert_eq!(required, ["A", "B"]);
        assert_eq!(optional, vars(&[("C", "3"), ("D", "")]));
    }

    #[test]
    fn builtins_apply_cleanly_with_ssh_key() {
        let dirs = TemplateDirs::default();
        for (name, content) in BUILTINS {
            let (required, _) = extract_variables(content);
            assert_eq!(required, ["SSH_KEY"], "{name}");
            let out =
                apply_template(&dirs, name, &vars(&[("SSH_KEY", "ssh-ed25519 AAAA k")])).unwrap();
            assert!(!out.contains("${"), "{name} left a placeholder");
            for section in ["kernel:", "init:", "onboot:", "services:", "files:"] {
                assert!(out.lines().any(|l| l == section), "{name} lacks {section}");
            }
            assert!(out.contains("ssh-ed25519 AAAA k"));
        }
        let err = apply_template(&dirs, "core-dev", &BTreeMap::new()).unwrap_err();
        assert!(err.to_string().contains("SSH_KEY"));
    }

    #[test]
    fn builtin_defaults_match_spec() {
        let defaults = |content| {
            let (_, optional) = extract_variables(content);
            let pairs: Vec<String> = optional.iter().map(|(k, v)| format!("{k}={v}")).collect();
            pairs.join(" ")
        };
        let dev = "CPUS=2 DATA_SIZE=10G HOSTNAME=core-dev MEMORY=2048";
        assert_eq!(defaults(BUILTINS[0].1), dev);
        let php =
            "APP_NAME=app CPUS=1 DOMAIN=localhost HOSTNAME=php-server MEMORY=512 PHP_MEMORY=128M";
        assert_eq!(defaults(BUILTINS[1].1), php);
    }

    #[test]
    fn describes_with_first_non_empty_comment() {
        assert_eq!(
            describe("#\n  #   \nkey: 1\n  ##  Hello world  \n# later"),
            Some("Hello world")
        );
        assert_eq!(describe("key: value # not a comment line\n"), None);
        let all = list_templates(&TemplateDirs::default()).unwrap();
        assert!(all[0].description.contains("Go, Node.js, PHP, Docker"));
        assert!(all[1].description.contains("FrankenPHP"));
    }

    #[test]
    fn lists_builtins_then_disk_templates_with_shadowing() {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = TemplateDirs::new(&tmp.path().join("home"), Some(&tmp.path().join("proj")));
        let (ws, user) = (dirs.workspace.clone().unwrap(), dirs.user.clone().unwrap());
        assert_eq!(ws, tmp.path().join("proj/.core/linuxkit"));
        assert_eq!(user, tmp.path().join("home/linuxkit"));
        write(&user, "core-dev.yml", "# hijack\n");
        write(&ws, "server-php.yaml", "# hijack\n");
        let shared_user = write(&user, "shared.yml", "# from user\n");
        let shared_ws = write(&ws, "shared.yaml", "# from workspace\n");
        let zeta = write(&user, "zeta.yaml", "kernel: {}\n");
        let alpha = write(&ws, "alpha.yml", "\n#\n# Alpha VM\n");
        write(&user, "notes.txt", "# ignored\n");
        write(&user.join("dir.yml"), "inner.yml", "# ignored\n");

        let list = list_templates(&dirs).unwrap();
        let names: Vec<&str> = list.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["core-dev", "server-php", "alpha", "shared", "zeta"]);
        assert!(list[0].builtin && list[0].path.is_none() && list[1].builtin);
        assert!(list[0].description != "hijack" && list[1].description != "hijack");
        assert_eq!(list[2], template("alpha", "# Alpha VM", Some(alpha)));
        assert!(!list[2].builtin);
        assert_eq!(list[3].path.as_deref(), Some(shared_ws.as_path()));
        assert_eq!(list[3].description, "from workspace");
        assert_eq!(list[4].description, DEFAULT_DESCRIPTION);
        assert_eq!(list[4].path.as_deref(), Some(zeta.as_path()));

        let (t, content) = get_template(&dirs, "core-dev").unwrap();
        assert!(t.builtin && content == BUILTINS[0].1);
        let (t, content) = get_template(&dirs, "shared").unwrap();
        assert_eq!(
            (t.path.unwrap(), content.as_str()),
            (shared_ws.clone(), "# from workspace\n")
        );
        fs::remove_file(&shared_ws).unwrap();
        assert_eq!(
            get_template(&dirs, "shared").unwrap().0.path.unwrap(),
            shared_user
        );
    }

    #[test]
    fn prefers_yml_and_tolerates_missing_directories() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "x.yaml", "# yaml\n");
        let yml = write(tmp.path(), "x.yml", "# yml\n");
        let dirs = TemplateDirs {
            workspace: Some(tmp.path().to_path_buf()),
            user: None,
        };
        assert_eq!(get_template(&dirs, "x").unwrap().0.path.unwrap(), yml);
        // Missing directories are simply empty.
        let dirs = TemplateDirs::new(&tmp.path().join("absent"), Some(&tmp.path().join("gone")));
        assert_eq!(list_templates(&dirs).unwrap().len(), BUILTINS.len());
    }

    #[test]
    fn unknown_name_lists_available_templates() {
        let tmp = tempfile::tempdir().unwrap();
        write(&tmp.path().join("linuxkit"), "mine.yml", "# mine\n");
        write(tmp.path(), "outside.yml", "# outside\n");
        let dirs = TemplateDirs::new(tmp.path(), None);
        for name in ["nope", "../outside", "mine.yml"] {
            let err = get_template(&dirs, name).unwrap_err();
            match &err {
                TemplateError::NotFound { name: n, available } => {
                    assert_eq!(n, name);
                    assert_eq!(available, &["core-dev", "server-php", "mine"]);
                }
                other => panic!("unexpected error {other:?}"),
            }
            let msg = err.to_string();
            assert!(
                msg.contains(name) && msg.contains("core-dev, server-php, mine"),
                "{msg}"
            );
        }
    }

    #[test]
    fn unreadable_templates_are_skipped_and_named() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().unwrap();
        let bad = write(tmp.path(), "bad.yml", "");
        fs::write(&bad, [0xff, 0xfe]).unwrap();
        write(tmp.path(), "good.yml", "# fine\n");
        let odd = tmp.path().join(std::ffi::OsStr::from_bytes(b"odd\xff.yml"));
        fs::write(&odd, "# odd name\n").unwrap();
        let dirs = TemplateDirs {
            workspace: None,
            user: Some(tmp.path().to_path_buf()),
        };
        let listing = scan_templates(&dirs).unwrap();
        let names: Vec<&str> = listing.templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["core-dev", "server-php", "good"]);
        let why: Vec<String> = listing.skipped.iter().map(|e| e.to_string()).collect();
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(
            why.iter()
                .any(|w| w.contains(&bad.display().to_string()) && w.contains("UTF-8")),
            "{why:?}"
        );
        assert!(
            why.iter().any(|w| w.contains("name is not valid UTF-8")),
            "{why:?}"
        );
        assert_eq!(list_templates(&dirs).unwrap().len(), 3);
        // Asked for by name, the bad one is still an error naming the file.
        let err = get_template(&dirs, "bad").unwrap_err();
        assert!(
            err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn resources_come_from_vars_then_defaults() {
        let t = "m: ${MEMORY:-2048}\nc: ${CPUS:-2}\n";
        assert_eq!(
            resources(t, &BTreeMap::new()).unwrap(),
            (Some(2048), Some(2))
        );
        let vars = BTreeMap::from([("MEMORY".to_string(), "512".to_string())]);
        assert_eq!(resources(t, &vars).unwrap(), (Some(512), Some(2)));
        assert_eq!(
            resources("no vars", &BTreeMap::new()).unwrap(),
            (None, None)
        );
    }
}
