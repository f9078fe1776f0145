//! `vmcontainer`: Docker-like verbs over the vmcontainer runtime. Parsing
//! and printing only; every behaviour lives in the `vmcontainer` crate.

#[cfg(feature = "devenv")]
mod dev;
mod output;
#[cfg(feature = "registry")]
mod registry;

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use vmcontainer::options::{add_port_spec, parse_volume_spec};
use vmcontainer::templates::{self, TemplateDirs};
use vmcontainer::{
    CopyEndpoint, CopyOptions, ExecOptions, LinuxKitManager, RunOptions, SpawnOptions, Transport,
};

#[derive(Parser)]
#[command(
    name = "vmcontainer",
    version,
    about = "Run LinuxKit VM images as lightweight containers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a container from an image (or a template built with LinuxKit).
    Run(RunArgs),
    /// List containers.
    Ps {
        /// Show stopped containers too.
        #[arg(short, long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop running containers (ACPI power-down, then SIGTERM, then SIGKILL).
    Stop {
        /// Seconds to wait for the guest to power off.
        #[arg(short, long, default_value_t = 10)]
        time: u64,
        /// Container IDs, ID prefixes or names.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Boot stopped containers again, with their own disks.
    Start {
        /// Container IDs, ID prefixes or names.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print a container's serial console log.
    Logs {
        /// Keep printing new output until the container stops.
        #[arg(short, long)]
        follow: bool,
        /// Container ID, ID prefix or name.
        container: String,
    },
    /// Run a command in a container (over its guest agent when it answers,
    /// else SSH).
    Exec {
        /// Allocate a pseudo-terminal (SSH).
        #[arg(short, long)]
        tty: bool,
        /// Pass stdin to the command: from a terminal as you type (SSH),
        /// from a pipe or file in full.
        #[arg(short, long)]
        interactive: bool,
        /// Set an environment variable (repeatable).
        #[arg(short, long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Working directory of the command.
        #[arg(short, long, value_name = "DIR")]
        workdir: Option<String>,
        /// Run the command as this user (through the guest's `su`).
        #[arg(short, long)]
        user: Option<String>,
        /// How to reach the guest.
        #[arg(long, default_value = "auto", value_parser = parse_transport)]
        transport: Transport,
        /// Container ID, ID prefix or name.
        container: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Copy files or directories between the host and a container, like
    /// `docker cp` (one side is CONTAINER:PATH).
    Cp {
        /// Keep owners (uid/gid) too; modes and times are always kept.
        #[arg(short, long)]
        archive: bool,
        /// How to reach the guest.
        #[arg(long, default_value = "auto", value_parser = parse_transport)]
        transport: Transport,
        /// Source: a host path or CONTAINER:PATH (end a directory with /.
        /// to copy its contents).
        src: String,
        /// Destination: a host path or CONTAINER:PATH.
        dst: String,
    },
    /// Remove containers (their log, disk overlay and runtime files).
    Rm {
        /// Stop running containers first.
        #[arg(short, long)]
        force: bool,
        /// Container IDs, ID prefixes or names.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Print everything known about containers, as JSON.
    Inspect {
        /// Container IDs, ID prefixes or names.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Wait until a container answers on its guest agent or SSH.
    Wait {
        /// Seconds to wait.
        #[arg(short, long, default_value_t = 120)]
        timeout: u64,
        /// Which answer to wait for.
        #[arg(long, default_value = "auto", value_parser = parse_transport)]
        transport: Transport,
        /// Container ID, ID prefix or name.
        container: String,
    },
    /// Snapshots of running containers: create, ls, inspect, rm (resume
    /// one with `run --snapshot NAME`).
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Write a container's disk as a standalone qcow2 image.
    Commit {
        /// Container ID, ID prefix or name.
        container: String,
        /// The new image (must end in .qcow2 and not exist).
        path: PathBuf,
    },
    /// The dev environment: install, update, boot, stop, status, shell,
    /// serve, test, claude.
    #[cfg(feature = "devenv")]
    Dev {
        #[command(subcommand)]
        action: dev::DevCommand,
    },
    /// Kept in a build without the `devenv` feature so that `dev` says why
    /// it is missing instead of "unrecognized subcommand".
    #[cfg(not(feature = "devenv"))]
    #[command(hide = true, disable_help_flag = true)]
    Dev {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Push an image to an OCI registry (or a KubeVirt containerDisk).
    #[cfg(feature = "registry")]
    Push(registry::PushArgs),
    /// Pull an image from an OCI registry into the image store.
    #[cfg(feature = "registry")]
    Pull(registry::PullArgs),
    /// Print a container or image as a KubeVirt VirtualMachine (YAML).
    #[cfg(feature = "registry")]
    Export(registry::ExportArgs),
    /// List LinuxKit templates, or show one.
    Templates {
        #[command(subcommand)]
        action: Option<TemplateAction>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum TemplateAction {
    /// Print a template's content.
    Show {
        /// Template name.
        name: String,
    },
    /// List a template's variables.
    Vars {
        /// Template name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SnapshotAction {
    /// Snapshot a running container's memory, devices and disk; it keeps
    /// running.
    Create {
        /// Container ID, ID prefix or name.
        container: String,
        /// Snapshot name ([A-Za-z0-9_.-], starting with a letter or digit).
        name: String,
    },
    /// List snapshots.
    Ls {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print everything known about snapshots, as JSON.
    Inspect {
        /// Snapshot names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove snapshots (refused while containers were created from them).
    Rm {
        /// Snapshot names.
        #[arg(required = true)]
        names: Vec<String>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    detach: bool,
    /// Container name.
    #[arg(long)]
    name: Option<String>,
    /// Memory in MB.
    #[arg(short, long)]
    memory: Option<u32>,
    /// Number of vCPUs.
    #[arg(long)]
    cpus: Option<u32>,
    /// Forward a port: [IP:]HOST:GUEST (listens on 127.0.0.1 by default).
    #[arg(short = 'p', long = "publish")]
    ports: Vec<String>,
    /// Share a directory over 9p: HOST:GUEST (9p tag = GUEST's base name).
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// Host port for SSH (default: a free loopback port).
    #[arg(long)]
    ssh_port: Option<u16>,
    /// Private key `exec` uses.
    #[arg(long)]
    ssh_key: Option<PathBuf>,
    /// Build the image from this LinuxKit template.
    #[arg(long)]
    template: Option<String>,
    /// Template variable KEY=VALUE.
    #[arg(long = "var", requires = "template")]
    vars: Vec<String>,
    /// Resume this snapshot instead of booting an image (memory, CPUs and
    /// volumes are the snapshot's).
    #[arg(long, conflicts_with_all = ["template", "image", "volumes"])]
    snapshot: Option<String>,
    /// Print the container as JSON.
    #[arg(long)]
    json: bool,
    /// Allow plain HTTP when IMAGE is pulled from a registry that is not
    /// on loopback.
    #[cfg(feature = "registry")]
    #[arg(long)]
    plain_http: bool,
    /// Image file (.iso, .qcow2, .vmdk, .raw/.img, or LinuxKit NAME-kernel),
    /// or a registry reference (REGISTRY/REPO[:TAG], pulled when missing).
    #[arg(required_unless_present_any = ["template", "snapshot"])]
    image: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread: a command is one flow of work (concurrent parts are
    // futures of one task, blocking work goes to the blocking pool), and on
    // one thread the descriptor a reply or timer arrives on is polled where
    // the waiting future runs, with no hand-off between threads, which
    // under TCG (the guest keeping cores busy) cost `exec` through the
    // agent about 0.3-0.9 ms of its 15-17.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("vmcontainer: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn manager() -> Result<LinuxKitManager> {
    // Waits nobody asked for (exec on a guest that has not answered yet)
    // are announced, never silent.
    Ok(LinuxKitManager::from_env()?.on_wait(|m| eprintln!("vmcontainer: {m}")))
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    s.parse().map_err(|e: vmcontainer::Error| e.to_string())
}

fn template_dirs() -> Result<TemplateDirs> {
    Ok(TemplateDirs::resolve(None, None)?)
}

async fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run(args) => run(args).await,
        Command::Ps { all, json } => {
            let (list, damaged) = manager()?.list_with_damaged()?;
            let list: Vec<_> = list
                .into_iter()
                .filter(|c| all || c.status.is_active())
                .collect();
            if json {
                output::json(&list)?;
            } else {
                output::ps_table(&list);
            }
            // Never hidden: each damaged record is named with how to fix it.
            for e in damaged {
                output::warn(&e.to_string());
            }
            // The process ends now; freeing 100,000 records one by one
            // would only delay that.
            std::mem::forget(list);
            Ok(ExitCode::SUCCESS)
        }
        Command::Stop { time, containers } => {
            let m = manager()?;
            for c in containers {
                let spin = output::spinner(format!("stopping {c}"));
                let stopped = m.stop(&c, Duration::from_secs(time)).await;
                spin.finish_and_clear();
                println!("{}", stopped?.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Start { containers } => {
            let m = manager()?;
            for c in containers {
                println!("{}", m.start(&c).await?.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logs { follow, container } => logs(follow, &container).await,
        Command::Exec {
            tty,
            interactive,
            env,
            workdir,
            user,
            transport,
            container,
            command,
        } => {
            let setting = SpawnOptions {
                env,
                cwd: workdir,
                user,
                ..Default::default()
            };
            let command = setting.command(&command)?;
            exec(tty, interactive, transport, &container, &command).await
        }
        Command::Cp {
            archive,
            transport,
            src,
            dst,
        } => {
            let opts = CopyOptions { archive, transport };
            let m = manager()?;
            let spin = output::spinner(format!("copying {src} to {dst}"));
            let copied = match (CopyEndpoint::parse(&src)?, CopyEndpoint::parse(&dst)?) {
                (CopyEndpoint::Host(h), CopyEndpoint::Guest { container, path }) => {
                    m.copy_to(&container, &h, &path, &opts).await
                }
                (CopyEndpoint::Guest { container, path }, CopyEndpoint::Host(h)) => {
                    m.copy_from(&container, &path, &h, &opts).await
                }
                _ => {
                    spin.finish_and_clear();
                    bail!("cp needs exactly one side written as CONTAINER:PATH (got {src:?} and {dst:?})")
                }
            };
            spin.finish_and_clear();
            copied?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Rm { force, containers } => {
            let m = manager()?;
            for c in containers {
                println!("{}", m.remove(&c, force).await?.id);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect { containers } => {
            let m = manager()?;
            let all = containers
                .iter()
                .map(|c| m.inspect(c))
                .collect::<vmcontainer::Result<Vec<_>>>()?;
            output::json(&all)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait {
            timeout,
            transport,
            container,
        } => {
            let what = match transport {
                Transport::Auto => "the guest agent or SSH",
                Transport::Agent => "the guest agent",
                Transport::Ssh => "SSH",
            };
            let spin = output::spinner(format!(
                "waiting up to {timeout}s for {what} of {container}"
            ));
            let c = manager()?
                .wait_ready_via(&container, Duration::from_secs(timeout), transport)
                .await;
            spin.finish_and_clear();
            println!("{}", c?.0.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates { action, json } => templates_cmd(action, json),
        Command::Snapshot { action } => snapshot_cmd(action).await,
        Command::Commit { container, path } => {
            let _pause = finish_on_interrupt("the commit (the container is paused meanwhile)")?;
            let spin = output::spinner(format!("committing {container}"));
            let done = manager()?.commit(&container, &path).await;
            spin.finish_and_clear();
            println!("{}", done?.display());
            Ok(ExitCode::SUCCESS)
        }
        #[cfg(feature = "devenv")]
        Command::Dev { action } => dev::dispatch(action).await,
        #[cfg(feature = "registry")]
        Command::Push(a) => registry::push(&manager()?, a).await,
        #[cfg(feature = "registry")]
        Command::Pull(a) => registry::pull(&manager()?, a).await,
        #[cfg(feature = "registry")]
        Command::Export(a) => registry::export(&manager()?, a),
        #[cfg(not(feature = "devenv"))]
        Command::Dev { .. } => bail!(
            "`dev` is not available: this vmcontainer was built without the dev environment (cargo feature `devenv`)"
        ),
    }
}

/// `exec`: a terminal, or stdin typed at a terminal, needs SSH; otherwise
/// the core picks the transport, and stdin from a pipe or file is passed in
/// full: always with `-i`; without it when it is a file, or a pipe that
/// already has data or is closed (`echo x | vmcontainer exec ID cat`, as
/// over SSH before the agent), but never an idle pipe inherited from a
/// parent, which might never end.
async fn exec(
    tty: bool,
    interactive: bool,
    transport: Transport,
    container: &str,
    command: &[String],
) -> Result<ExitCode> {
    use std::io::{IsTerminal, Read};
    let m = manager()?;
    // Ctrl-C (or a kill) of this CLI reaches the command, as in a terminal.
    let io = vmcontainer::session::SessionIo::inherit().forwarding_signals();
    let code = if tty || (interactive && std::io::stdin().is_terminal()) {
        if transport == Transport::Agent {
            bail!(
                "an interactive session (-t, or -i at a terminal) needs SSH, not the guest agent"
            );
        }
        m.exec_interactive_agent(container, command, tty, false, &io)
            .await?
    } else {
        let mut input = None;
        if interactive || piped_stdin_ready() {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            // Empty (e.g. /dev/null) is no input: SSH then streams output.
            input = (interactive || !buf.is_empty()).then_some(buf);
        }
        m.exec_attached(container, command, &ExecOptions { input, transport }, &io)
            .await?
    };
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// `NAME=VALUE` of `exec -e`.
fn parse_env(s: &str) -> std::result::Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// Whether stdin is not a terminal and can be read without waiting: a
/// file, or a pipe with data or closed.
fn piped_stdin_ready() -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

async fn run(args: RunArgs) -> Result<ExitCode> {
    let mut opts = RunOptions {
        name: args.name,
        detach: args.detach,
        memory: args.memory,
        cpus: args.cpus,
        ssh_port: args.ssh_port,
        ssh_key: args.ssh_key,
        ..Default::default()
    };
    for p in &args.ports {
        add_port_spec(&mut opts, p)?;
    }
    for v in &args.volumes {
        opts.volumes.push(parse_volume_spec(v)?);
    }
    let m = manager()?;
    if let Some(name) = &args.snapshot {
        return start(&m, Start::Snapshot(name), opts, args.json).await;
    }
    let image = match (&args.template, args.image) {
        (Some(t), _) => {
            let vars = vmcontainer::manager::parse_vars(&args.vars)?;
            let dirs = template_dirs()?;
            // Said before the build, which may fail or take minutes.
            let (_, raw) = templates::get_template(&dirs, t)?;
            for name in templates::unused_variables(&raw, &vars) {
                output::warn(&format!(
                    "--var {}: template {t} does not use this variable",
                    vmcontainer::error::shown(&name)
                ));
            }
            let spin = output::spinner(format!("building template {t} with linuxkit"));
            let built = m.build_template(&dirs, t, &vars).await;
            spin.finish_and_clear();
            let built = built?;
            opts = built.size(opts);
            built.path
        }
        #[cfg(feature = "registry")]
        (None, Some(i)) => registry::run_image(&m, i, args.plain_http).await?,
        #[cfg(not(feature = "registry"))]
        (None, Some(i)) => i,
        (None, None) => bail!("an IMAGE or --template is required"),
    };
    start(&m, Start::Image(&image), opts, args.json).await
}

/// What `run` starts a container from.
enum Start<'a> {
    Image(&'a std::path::Path),
    Snapshot(&'a str),
}

/// Starts the container: detached, prints its ID (or JSON); in the
/// foreground, streams its console until it exits.
async fn start(
    m: &LinuxKitManager,
    from: Start<'_>,
    opts: RunOptions,
    json: bool,
) -> Result<ExitCode> {
    if opts.detach {
        let c = match from {
            Start::Image(i) => m.run(i, opts).await?,
            Start::Snapshot(n) => m.run_snapshot(n, opts).await?,
        };
        if json {
            output::json(&c)?;
        } else {
            println!("{}", c.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    // The VM belongs to this process: a signal that would end it stops the
    // VM first, and the exit code says it was interrupted (128 + signal).
    let signals = Interrupts::new()?;
    let got = signals.got.clone();
    let mut stdout = std::io::stdout();
    let mut sink = |b: &[u8]| {
        let _ = stdout.write_all(b);
        let _ = stdout.flush();
    };
    let c = match from {
        Start::Image(i) => {
            m.run_attached_until(i, opts, &mut sink, signals.next())
                .await?
        }
        Start::Snapshot(n) => {
            m.run_snapshot_attached_until(n, opts, &mut sink, signals.next())
                .await?
        }
    };
    let sig = got.load(std::sync::atomic::Ordering::SeqCst);
    Ok(if sig != 0 {
        ExitCode::from(128u8.saturating_add(sig as u8))
    } else if c.status == vmcontainer::Status::Stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Keeps SIGINT, SIGTERM and SIGHUP from killing the CLI while it has a
/// VM paused: the operation finishes (and resumes the VM) first. The
/// process ends right after, so the handlers are never taken down.
fn finish_on_interrupt(what: &'static str) -> Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            eprintln!("vmcontainer: finishing {what} before exiting");
        }
    }))
}

async fn snapshot_cmd(action: SnapshotAction) -> Result<ExitCode> {
    let m = manager()?;
    match action {
        SnapshotAction::Create { container, name } => {
            let _pause = finish_on_interrupt("the snapshot (the container may be paused)")?;
            let spin = output::spinner(format!("snapshotting {container} as {name}"));
            let s = m.snapshot_create(&container, &name).await;
            spin.finish_and_clear();
            println!("{}", s?.name);
        }
        SnapshotAction::Ls { json } => {
            let list = m.snapshot_list()?;
            if json {
                output::json(&list)?;
            } else {
                output::snapshots_table(&list);
            }
        }
        SnapshotAction::Inspect { names } => {
            let all = names
                .iter()
                .map(|n| m.snapshot_get(n))
                .collect::<vmcontainer::Result<Vec<_>>>()?;
            output::json(&all)?;
        }
        SnapshotAction::Rm { names } => {
            for n in names {
                println!("{}", m.snapshot_remove(&n)?.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// SIGINT, SIGTERM and SIGHUP, caught from the moment this is made.
struct Interrupts {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    got: std::sync::Arc<std::sync::atomic::AtomicI32>,
}

impl Interrupts {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
            got: Default::default(),
        })
    }

    /// Resolves with the name of the first signal to arrive.
    async fn next(mut self) -> String {
        let (n, name) = tokio::select! {
            _ = self.int.recv() => (2, "SIGINT"),
            _ = self.term.recv() => (15, "SIGTERM"),
            _ = self.hup.recv() => (1, "SIGHUP"),
        };
        self.got.store(n, std::sync::atomic::Ordering::SeqCst);
        name.to_string()
    }
}

async fn logs(follow: bool, container: &str) -> Result<ExitCode> {
    let m = manager()?;
    let mut out = std::io::stdout().lock();
    if !follow {
        out.write_all(&m.logs(container)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut f = m.follow_logs(container)?;
    loop {
        tokio::select! {
            chunk = f.next_chunk() => match chunk {
                Some(b) => { out.write_all(&b?)?; out.flush()?; }
                None => break,
            },
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn templates_cmd(action: Option<TemplateAction>, json: bool) -> Result<ExitCode> {
    let dirs = template_dirs()?;
    match action {
        None => {
            let listing = templates::scan_templates(&dirs)?;
            if json {
                output::json(&listing.templates)?;
            } else {
                output::templates_table(&listing.templates);
            }
            for e in listing.skipped {
                output::warn(&format!("skipped: {e}"));
            }
        }
        Some(TemplateAction::Show { name }) => {
            let (_, content) = templates::get_template(&dirs, &name)?;
            print!("{content}");
        }
        Some(TemplateAction::Vars { name, json }) => {
            let (_, content) = templates::get_template(&dirs, &name)?;
            let (required, optional) = templates::extract_variables(&content);
            if json {
                output::json(&serde_json::json!({ "required": required, "optional": optional }))?;
            } else {
                for r in required {
                    println!("{r} (required)");
                }
                for (k, v) in optional {
                    println!("{k} (default: {v})");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
