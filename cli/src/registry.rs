//! `push`, `pull`, `export --kubevirt`, and the pull behind `run REF`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use vmcontainer::registry::reference::is_registry_reference;
use vmcontainer::registry::{PullOptions, PushOptions};
use vmcontainer::LinuxKitManager;

use crate::output;

/// `push [--containerdisk] [--plain-http] [--json] IMAGE REF`.
#[derive(clap::Args)]
pub struct PushArgs {
    /// Push a KubeVirt containerDisk (an OCI image with the disk under
    /// /disk/) instead of a vmcontainer VM image.
    #[arg(long)]
    containerdisk: bool,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    plain_http: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Image file (.iso, .qcow2, .vmdk, .raw/.img, or LinuxKit NAME-kernel).
    image: PathBuf,
    /// Where to push: REGISTRY/REPOSITORY[:TAG].
    reference: String,
}

/// `pull [--plain-http] [--json] REF`.
#[derive(clap::Args)]
pub struct PullArgs {
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    plain_http: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// REGISTRY/REPOSITORY[:TAG] or REGISTRY/REPOSITORY@sha256:DIGEST.
    reference: String,
}

/// `export --kubevirt [--image-ref REF] ID|IMAGE`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// Print a KubeVirt VirtualMachine and Service (the only format so
    /// far).
    #[arg(long, required = true)]
    kubevirt: bool,
    /// The containerDisk the VM boots (default: the one last pushed with
    /// `push --containerdisk` from the same image).
    #[arg(long)]
    image_ref: Option<String>,
    /// Container ID, ID prefix or name, or an image file or pulled
    /// reference.
    target: String,
}

pub async fn push(m: &LinuxKitManager, a: PushArgs) -> Result<ExitCode> {
    let pb = output::transfer_bar("push");
    let mut progress = output::bar_progress(&pb);
    let r = m
        .push(
            &a.image,
            &a.reference,
            PushOptions {
                containerdisk: a.containerdisk,
                plain_http: a.plain_http,
                progress: Some(&mut progress),
            },
        )
        .await;
    pb.finish_and_clear();
    let r = r?;
    if a.json {
        output::json(&r)?;
    } else {
        println!("{}@{}", repository(&r.reference), r.digest);
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn pull(m: &LinuxKitManager, a: PullArgs) -> Result<ExitCode> {
    let pb = output::transfer_bar("pull");
    let mut progress = output::bar_progress(&pb);
    let r = m
        .pull(
            &a.reference,
            PullOptions {
                plain_http: a.plain_http,
                progress: Some(&mut progress),
            },
        )
        .await;
    pb.finish_and_clear();
    let r = r?;
    if a.json {
        output::json(&r)?;
    } else {
        println!("{}", r.image.path.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(m: &LinuxKitManager, a: ExportArgs) -> Result<ExitCode> {
    if !a.kubevirt {
        bail!("export needs a format: --kubevirt");
    }
    print!("{}", m.export_kubevirt(&a.target, a.image_ref.as_deref())?);
    Ok(ExitCode::SUCCESS)
}

/// What `run` boots for IMAGE: a registry reference is pulled (with a
/// progress bar) unless already present.
pub async fn run_image(m: &LinuxKitManager, image: PathBuf, plain_http: bool) -> Result<PathBuf> {
    if !image.to_str().is_some_and(is_registry_reference) {
        return Ok(image);
    }
    let pb = output::transfer_bar("pull");
    let mut progress = output::bar_progress(&pb);
    let r = m
        .resolve_image(
            &image,
            PullOptions {
                plain_http,
                progress: Some(&mut progress),
            },
        )
        .await;
    pb.finish_and_clear();
    Ok(r?)
}

/// `registry/repo` of `registry/repo:tag`.
fn repository(reference: &str) -> &str {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}
