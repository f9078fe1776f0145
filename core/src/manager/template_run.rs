//! Running a container from a LinuxKit template: render it with the
//! caller's variables, build a bootable ISO with `linuxkit`, and run that,
//! sized by the template's `MEMORY` and `CPUS` unless the caller chose.
//! Every face (`run --template`, `run_template`, `vmc_manager_run_template`,
//! `runTemplate`, `RunTemplate`) goes through here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::LinuxKitManager;
use crate::container::{Container, RunOptions};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::templates::{self, TemplateDirs};

/// An ISO built from a template, and the size the template asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateImage {
    /// The built image, `HOME/builds/<name>-<hash>.iso` (or the extension
    /// of the image linuxkit left, see [`crate::linuxkit::find_built_image`]).
    pub path: PathBuf,
    /// The template's `MEMORY` (MB), from the variables or its default.
    pub memory: Option<u32>,
    /// The template's `CPUS`, from the variables or its default.
    pub cpus: Option<u32>,
}

impl TemplateImage {
    /// `opts` with the template's size where the caller left it unset.
    pub fn size(&self, opts: RunOptions) -> RunOptions {
        RunOptions {
            memory: opts.memory.or(self.memory),
            cpus: opts.cpus.or(self.cpus),
            ..opts
        }
    }
}

impl LinuxKitManager {
    /// Renders template `name` (looked up in `dirs`) with `vars` and builds
    /// it with `linuxkit build --format iso-bios`.
    ///
    /// The ISO is named after the rendered content, so containers built
    /// from other variables never share (or overwrite) an image, and
    /// `start` boots a container from the ISO it was built with. The build
    /// runs in a private directory and the ISO is moved into place only
    /// when complete, so concurrent builds never see a partial one.
    pub async fn build_template(
        &self,
        dirs: &TemplateDirs,
        name: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<TemplateImage> {
        let (_, raw) = templates::get_template(dirs, name)?;
        let content = templates::apply_variables(&raw, vars)?;
        let (memory, cpus) = templates::resources(&raw, vars)?;
        let builds = self.home.root().join("builds");
        Home::ensure_dir(&builds)?;
        let digest = Sha256::digest(content.as_bytes());
        let hash: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        let work = tempfile::Builder::new()
            .prefix(&format!(".{name}-"))
            .tempdir_in(&builds)
            .map_err(|e| Error::io("create build directory", &builds, e))?;
        let built = crate::linuxkit::build_iso(&content, name, work.path()).await?;
        // The built image keeps its format's extension (linuxkit may leave
        // a qcow2 or raw image rather than an ISO).
        let ext = built
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("iso")
            .to_string();
        let path = builds.join(format!("{name}-{hash}.{ext}"));
        std::fs::rename(&built, &path).map_err(|e| Error::io("move built image", &built, e))?;
        Ok(TemplateImage { path, memory, cpus })
    }

    /// Builds template `name` (see [`Self::build_template`]) and runs it
    /// with `opts` (detached by default); the template's `MEMORY` and
    /// `CPUS` size the VM unless `opts` sets them.
    pub async fn run_template(
        &self,
        dirs: &TemplateDirs,
        name: &str,
        vars: &BTreeMap<String, String>,
        opts: RunOptions,
    ) -> Result<Container> {
        let image = self.build_template(dirs, name, vars).await?;
        self.run(&image.path, image.size(opts)).await
    }

    /// [`Self::run_template`] in the foreground, streaming serial output to
    /// `on_output` (see [`Self::run_attached_until`]).
    pub async fn run_template_attached(
        &self,
        dirs: &TemplateDirs,
        name: &str,
        vars: &BTreeMap<String, String>,
        opts: RunOptions,
        on_output: &mut (dyn FnMut(&[u8]) + Send),
        interrupt: impl std::future::Future<Output = String> + Send,
    ) -> Result<Container> {
        let image = self.build_template(dirs, name, vars).await?;
        self.run_attached_until(&image.path, image.size(opts), on_output, interrupt)
            .await
    }
}

/// Parses `KEY=VALUE` template variables (the CLI's `--var`, C's string
/// arrays) as go-container did: spaces around the key and the value are
/// trimmed, and one pair of matching quotes (`"` or `'`) around the value is
/// removed, so `--var 'KEY="a b"'` gives `a b`. Every entry needs a
/// non-empty key; a later duplicate wins.
pub fn parse_vars<S: AsRef<str>>(vars: &[S]) -> Result<BTreeMap<String, String>> {
    vars.iter()
        .map(|v| {
            let v = v.as_ref();
            match v.split_once('=') {
                Some((k, val)) if !k.trim().is_empty() => {
                    Ok((k.trim().to_string(), unquote(val.trim()).to_string()))
                }
                _ => Err(Error::invalid("template variable", v, "expected KEY=VALUE")),
            }
        })
        .collect()
}

/// `value` without one pair of matching surrounding quotes.
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|rest| rest.strip_suffix(q)) {
            return inner;
        }
    }
    value
}

/// Whether `path` looks like an ISO this module built (used by tests).
#[cfg(test)]
fn is_build_path(home: &std::path::Path, name: &str, path: &std::path::Path) -> bool {
    path.parent() == Some(&home.join("builds"))
        && path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{name}-")) && n.ends_with(".iso"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    #[test]
    fn vars_are_key_value() {
        let v = parse_vars(&["A=1", "B=x=y", "A=2", "E="]).unwrap();
        assert_eq!(v["A"], "2");
        assert_eq!(v["B"], "x=y");
        assert_eq!(v["E"], "");
        let e = parse_vars(&["=x"]).unwrap_err().to_string();
        assert!(e.contains("KEY=VALUE") && e.contains("=x"), "{e}");
        assert!(parse_vars(&["novalue"]).is_err());
        assert!(parse_vars(&["  =x"]).is_err());
    }

    #[test]
    fn vars_are_trimmed_and_unquoted_as_go_container_did() {
        let v = parse_vars(&[
            r#"KEY="a b""#,
            " SPACED = value ",
            "SINGLE='it is'",
            r#"INNER=say "hi""#,
            r#"ODD="unbalanced"#,
            r#"ONE=""#,
            r#"EMPTY="""#,
            r#"MIXED="x'"#,
        ])
        .unwrap();
        assert_eq!(v["KEY"], "a b");
        assert_eq!(v["SPACED"], "value");
        assert_eq!(v["SINGLE"], "it is");
        assert_eq!(v["INNER"], r#"say "hi""#);
        assert_eq!(v["ODD"], r#""unbalanced"#);
        assert_eq!(v["ONE"], r#"""#);
        assert_eq!(v["EMPTY"], "");
        assert_eq!(v["MIXED"], r#""x'"#);
    }

    #[test]
    fn size_fills_only_what_the_caller_left_unset() {
        let img = TemplateImage {
            path: "/x.iso".into(),
            memory: Some(512),
            cpus: Some(2),
        };
        let o = img.size(RunOptions::default());
        assert_eq!((o.memory, o.cpus), (Some(512), Some(2)));
        let o = img.size(RunOptions {
            memory: Some(64),
            ..Default::default()
        });
        assert_eq!((o.memory, o.cpus), (Some(64), Some(2)));
    }

    #[test]
    fn builds_are_named_by_content_and_errors_name_the_template() {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let tpl = home.join("linuxkit");
        std::fs::create_dir_all(&tpl).unwrap();
        std::fs::write(tpl.join("mini.yml"), "# Mini\nhostname: ${HOST:-box}\n").unwrap();
        // A stand-in linuxkit writing the YAML it got as the "ISO".
        let fake = tmp.path().join("linuxkit");
        std::fs::write(
            &fake,
            "#!/bin/sh\nwhile [ $# -gt 1 ]; do case $1 in --name) n=$2;; --dir) d=$2;; esac; shift; done\ncp \"$1\" \"$d/$n.iso\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let m = LinuxKitManager::with_hypervisor(
            Home::new(&home),
            Arc::new(crate::hypervisor::QemuHypervisor::new()),
        );
        let dirs = TemplateDirs::new(&home, None);
        let mut vars = BTreeMap::new();
        let lk = crate::linuxkit::LINUXKIT_ENV;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let built = {
            // The tests that set the variable take this lock.
            let _g = crate::linuxkit::test_env_lock();
            std::env::set_var(lk, &fake);
            let a = rt.block_on(m.build_template(&dirs, "mini", &vars));
            vars.insert("HOST".into(), "other".into());
            let b = rt.block_on(m.build_template(&dirs, "mini", &vars));
            let c = rt.block_on(m.build_template(&dirs, "nope", &vars));
            std::env::remove_var(lk);
            (a, b, c)
        };
        let (a, b) = (built.0.unwrap(), built.1.unwrap());
        assert!(
            is_build_path(&home, "mini", &a.path),
            "{}",
            a.path.display()
        );
        assert_ne!(a.path, b.path);
        assert_eq!(
            std::fs::read_to_string(&a.path).unwrap(),
            "# Mini\nhostname: box\n"
        );
        assert_eq!(
            std::fs::read_to_string(&b.path).unwrap(),
            "# Mini\nhostname: other\n"
        );
        // No work directory is left behind.
        let left: Vec<_> = std::fs::read_dir(home.join("builds"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().is_dir())
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let e = built.2.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Template);
        assert!(e.to_string().contains("nope"), "{e}");
    }
}
