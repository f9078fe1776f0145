//! `vmcontainer`: Docker-like verbs over the vmcontainer runtime. Parsing
//! and printing only; every behaviour lives in the `vmcontainer` crate.

mod dev;
mod output;
#[cfg(feature = "registry")]
mod registry;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use vmcontainer::options::{add_port_spec, parse_volume_spec};
use vmcontainer::templates::{self, TemplateDirs};
use vmcontainer::{LinuxKitManager, RunOptions};

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
    /// Run a command in a container over SSH.
    Exec {
        /// Allocate a pseudo-terminal.
        #[arg(short, long)]
        tty: bool,
        /// Keep stdin open (accepted for Docker compatibility; stdin is
        /// always forwarded).
        #[arg(short, long)]
        interactive: bool,
        /// Container ID, ID prefix or name.
        container: String,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
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
    /// Wait until a container's SSH server answers.
    Wait {
        /// Seconds to wait.
        #[arg(short, long, default_value_t = 120)]
        timeout: u64,
        /// Container ID, ID prefix or name.
        container: String,
    },
    /// The dev environment: install, update, boot, stop, status, shell,
    /// serve, test, claude.
    Dev {
        #[command(subcommand)]
        action: dev::DevCommand,
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
    #[arg(required_unless_present = "template")]
    image: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
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
    Ok(LinuxKitManager::from_env()?)
}

fn template_dirs() -> Result<TemplateDirs> {
    Ok(TemplateDirs::resolve(None, None)?)
}

async fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run(args) => run(args).await,
        Command::Ps { all, json } => {
            let list: Vec<_> = manager()?
                .list()?
                .into_iter()
                .filter(|c| all || c.status.is_active())
                .collect();
            if json {
                output::json(&list)?;
            } else {
                output::ps_table(&list);
            }
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
            interactive: _,
            container,
            command,
        } => {
            let code = manager()?
                .exec_interactive(&container, &command, tty)
                .await?;
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
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
        Command::Wait { timeout, container } => {
            let spin = output::spinner(format!("waiting for SSH on {container}"));
            let c = manager()?
                .wait_ready(&container, Duration::from_secs(timeout))
                .await;
            spin.finish_and_clear();
            println!("{}", c?.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Templates { action, json } => templates_cmd(action, json),
        Command::Dev { action } => dev::dispatch(action).await,
        #[cfg(feature = "registry")]
        Command::Push(a) => registry::push(&manager()?, a).await,
        #[cfg(feature = "registry")]
        Command::Pull(a) => registry::pull(&manager()?, a).await,
        #[cfg(feature = "registry")]
        Command::Export(a) => registry::export(&manager()?, a),
    }
}

fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, String>> {
    vars.iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => Ok((k.to_string(), val.to_string())),
            _ => bail!("invalid --var {v:?}: expected KEY=VALUE"),
        })
        .collect()
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
    let image = match (&args.template, args.image) {
        (Some(t), _) => {
            let vars = parse_vars(&args.vars)?;
            let (_, raw) = templates::get_template(&template_dirs()?, t)?;
            let content = templates::apply_variables(&raw, &vars)?;
            let (memory, cpus) = templates::resources(&raw, &vars);
            opts.memory = opts.memory.or(memory);
            opts.cpus = opts.cpus.or(cpus);
            let work = m.home().root().join("builds").join(t);
            let spin = output::spinner(format!("building template {t} with linuxkit"));
            let iso = vmcontainer::linuxkit::build_iso(&content, t, &work).await;
            spin.finish_and_clear();
            iso?
        }
        #[cfg(feature = "registry")]
        (None, Some(i)) => registry::run_image(&m, i, args.plain_http).await?,
        #[cfg(not(feature = "registry"))]
        (None, Some(i)) => i,
        (None, None) => bail!("an IMAGE or --template is required"),
    };
    if opts.detach {
        let c = m.run(&image, opts).await?;
        if args.json {
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
    let c = m
        .run_attached_until(
            &image,
            opts,
            &mut |b: &[u8]| {
                let _ = stdout.write_all(b);
                let _ = stdout.flush();
            },
            signals.next(),
        )
        .await?;
    let sig = got.load(std::sync::atomic::Ordering::SeqCst);
    Ok(if sig != 0 {
        ExitCode::from(128u8.saturating_add(sig as u8))
    } else if c.status == vmcontainer::Status::Stopped {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
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
            let list = templates::list_templates(&dirs)?;
            if json {
                output::json(&list)?;
            } else {
                output::templates_table(&list);
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
