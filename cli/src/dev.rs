//! `vmcontainer dev ...`: the dev environment. Parsing and printing only;
//! the behaviour is `vmcontainer::devenv`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use vmcontainer::devenv::{
    Auth, BootOptions, ClaudeOptions, DevOps, ServeOptions, ShellOptions, TestOptions,
};

use vmcontainer::session::SessionIo;

use crate::output;

#[derive(Subcommand)]
pub enum DevCommand {
    /// Download the dev image (GitHub releases or the CDN, per config.yaml).
    Install {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a newer dev image if there is one.
    Update {
        /// Only report whether an update exists.
        #[arg(long)]
        check: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Boot the dev VM (`core-dev`) with the project shared at /app.
    Boot {
        /// Stop and replace a running dev VM.
        #[arg(long)]
        fresh: bool,
        /// Project directory shared at /app (default: current directory).
        #[arg(long)]
        project: Option<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
    },
    /// Stop the dev VM (its disk is kept for the next boot).
    Stop,
    /// Show whether the image is installed and the VM running.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open a shell in the dev VM (SSH with agent forwarding), or run
    /// `-- CMD...` there.
    Shell {
        /// Attach to the serial console instead (Ctrl-] detaches).
        #[arg(long)]
        console: bool,
        /// Do not forward the SSH agent.
        #[arg(long)]
        no_agent: bool,
        /// Project shown at /app (default: current directory).
        #[arg(long)]
        project: Option<PathBuf>,
        /// Command to run instead of a shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Serve the project from the dev VM on a forwarded port.
    Serve {
        /// Host port (on 127.0.0.1).
        #[arg(short, long, default_value_t = 8000)]
        port: u16,
        /// Port the server listens on in the VM.
        #[arg(long, default_value_t = 8000)]
        guest_port: u16,
        /// Subdirectory of the project to serve from.
        #[arg(long)]
        path: Option<PathBuf>,
        /// Project directory (default: current directory).
        #[arg(long)]
        project: Option<PathBuf>,
        /// Command instead of the detected one.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run the project's tests in the dev VM: `-- CMD...`, else `--name`
    /// from .core/test.yaml, else the detected command.
    Test {
        /// A command named in .core/test.yaml.
        #[arg(long)]
        name: Option<String>,
        /// Project directory (default: current directory).
        #[arg(long)]
        project: Option<PathBuf>,
        /// Explicit test command.
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Run Claude Code in the dev VM (booting it if needed) on the project.
    Claude {
        /// Model for claude (`--model`).
        #[arg(long)]
        model: Option<String>,
        /// Credentials to forward: anthropic, gh, ssh, git (default: all).
        #[arg(long, value_delimiter = ',', conflicts_with = "no_auth")]
        auth: Vec<String>,
        /// Forward no credentials.
        #[arg(long)]
        no_auth: bool,
        /// Extra environment for the session, KEY=VALUE.
        #[arg(short, long = "env")]
        env: Vec<String>,
        /// Project directory (default: current directory).
        #[arg(long)]
        project: Option<PathBuf>,
        #[command(flatten)]
        vm: VmArgs,
        /// Further arguments for claude.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

/// Settings of a dev VM that `boot` (and `claude`, when it boots) uses.
#[derive(Args)]
pub struct VmArgs {
    /// Memory in MB (default: config.yaml `dev.memory`, else 4096).
    #[arg(short, long)]
    memory: Option<u32>,
    /// vCPUs (default: config.yaml `dev.cpus`, else 2).
    #[arg(long)]
    cpus: Option<u32>,
    /// Private key for SSH into the VM (default: config.yaml `dev.ssh_key`).
    #[arg(long)]
    ssh_key: Option<PathBuf>,
    /// Seconds to wait for the VM's SSH server.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

impl VmArgs {
    fn boot_options(self, fresh: bool, project: Option<PathBuf>) -> BootOptions {
        BootOptions {
            memory: self.memory,
            cpus: self.cpus,
            fresh,
            project,
            ssh_key: self.ssh_key,
            ready_timeout: Duration::from_secs(self.timeout),
        }
    }
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(c.clamp(0, 255) as u8)
}

async fn install(dev: &DevOps, update: bool) -> Result<Option<vmcontainer::devenv::InstallReport>> {
    // Until the first byte arrives, a spinner with the time spent says that
    // the sources are being asked (each has a deadline:
    // VMCONTAINER_HTTP_TIMEOUT), so a silent server is never a silent wait.
    let pb = output::spinner(format!(
        "looking up the latest dev image (gives up after {:.0} s without an answer)",
        vmcontainer::sources::http_timeout().as_secs_f64()
    ));
    let bar = pb.clone();
    let mut started = false;
    let mut progress = move |done: u64, total: Option<u64>| {
        if !started {
            started = true;
            let style = output::transfer_bar("download").style();
            bar.disable_steady_tick();
            bar.set_style(style);
            bar.set_message("download");
        }
        if let Some(t) = total {
            bar.set_length(t);
        }
        bar.set_position(done);
    };
    let result = if update {
        dev.update(&mut progress).await
    } else {
        dev.install(&mut progress).await.map(Some)
    };
    pb.finish_and_clear();
    Ok(result?)
}

/// This process's streams, with its signals passed on to the command in
/// the guest: Ctrl-C in `dev claude` (sent as a signal when stdin is no
/// terminal) reaches claude, not just this CLI. `serve` stops its server
/// itself on a signal.
fn forwarding() -> SessionIo {
    SessionIo::inherit().forwarding_signals()
}

/// `SIGINT` or `SIGTERM`.
async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

fn fmt_uptime(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{}s", s / 60, s % 60),
        s => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

pub async fn dispatch(cmd: DevCommand) -> Result<ExitCode> {
    let dev = DevOps::from_env()?;
    match cmd {
        DevCommand::Install { json } => {
            let r = install(&dev, false).await?.expect("install reports");
            if json {
                output::json(&r)?;
            } else if r.already_installed {
                println!(
                    "{} {} is already installed ({})",
                    dev.images().name(),
                    r.version,
                    r.path.display()
                );
            } else {
                println!(
                    "installed {} {} from {} (sha256 {}){}",
                    dev.images().name(),
                    r.version,
                    r.source,
                    r.sha256,
                    if r.resumed_from > 0 {
                        format!(", resumed at byte {}", r.resumed_from)
                    } else {
                        String::new()
                    }
                );
            }
        }
        DevCommand::Update { check, json } => {
            if check {
                let info = dev.check_update().await?;
                if json {
                    output::json(&info)?;
                } else if info.has_update {
                    println!("update available: {} -> {}", info.current, info.latest);
                } else {
                    println!("up to date ({})", info.current);
                }
            } else {
                let r = install(&dev, true).await?;
                if json {
                    output::json(&r)?;
                } else {
                    match r {
                        Some(r) => println!("updated to {} from {}", r.version, r.source),
                        None => println!("up to date"),
                    }
                }
            }
        }
        DevCommand::Boot { fresh, project, vm } => {
            let spin = output::spinner("booting the dev environment".into());
            let c = dev.boot(vm.boot_options(fresh, project)).await;
            spin.finish_and_clear();
            let c = c?;
            println!("{}", c.id);
            eprintln!(
                "dev environment {} running; ssh port {}; project at /app",
                c.id, c.ssh_port
            );
        }
        DevCommand::Stop => {
            let spin = output::spinner("stopping the dev environment".into());
            let c = dev.stop().await;
            spin.finish_and_clear();
            println!("{}", c?.id);
        }
        DevCommand::Status { json } => {
            let s = dev.status()?;
            if json {
                output::json(&s)?;
            } else {
                let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
                println!(
                    "installed:  {}",
                    if s.installed {
                        format!(
                            "yes ({}, {})",
                            or_dash(s.image_version.clone()),
                            s.image_path.display()
                        )
                    } else {
                        "no (run `vmcontainer dev install`)".into()
                    }
                );
                println!("running:    {}", if s.running { "yes" } else { "no" });
                println!("container:  {}", or_dash(s.container_id));
                println!(
                    "memory:     {}",
                    or_dash(s.memory.map(|m| format!("{m} MB")))
                );
                println!("cpus:       {}", or_dash(s.cpus.map(|c| c.to_string())));
                println!("ssh port:   {}", or_dash(s.ssh_port.map(|p| p.to_string())));
                println!("uptime:     {}", or_dash(s.uptime_secs.map(fmt_uptime)));
                println!(
                    "project:    {}",
                    or_dash(s.project.map(|p| p.display().to_string()))
                );
            }
        }
        DevCommand::Shell {
            console,
            no_agent,
            project,
            command,
        } => {
            if console && !command.is_empty() {
                bail!("--console takes no command");
            }
            let c = dev
                .shell(ShellOptions {
                    console,
                    command,
                    no_agent,
                    // Like serve and test: the caller's project.
                    project: Some(project.unwrap_or_else(|| ".".into())),
                    io: forwarding(),
                })
                .await?;
            return Ok(code(c));
        }
        DevCommand::Serve {
            port,
            guest_port,
            path,
            project,
            command,
        } => {
            let opts = ServeOptions {
                project,
                path,
                port,
                guest_port,
                command,
                ..Default::default()
            };
            eprintln!(
                "serving `{}` on http://127.0.0.1:{port} (guest port {guest_port})",
                dev.serve_command(&opts)?
            );
            let c = dev.serve(opts, interrupted()).await?;
            return Ok(code(c));
        }
        DevCommand::Test {
            name,
            project,
            command,
        } => {
            let c = dev
                .test(TestOptions {
                    project,
                    name,
                    command,
                    io: forwarding(),
                })
                .await?;
            return Ok(code(c));
        }
        DevCommand::Claude {
            model,
            auth,
            no_auth,
            env,
            project,
            vm,
            args,
        } => {
            let auth = if no_auth {
                Some(Vec::new())
            } else if auth.is_empty() {
                None
            } else {
                Some(
                    auth.iter()
                        .map(|a| a.parse::<Auth>())
                        .collect::<vmcontainer::Result<Vec<_>>>()?,
                )
            };
            let env = env
                .iter()
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
                    _ => bail!("invalid --env {kv:?}: expected KEY=VALUE"),
                })
                .collect::<Result<Vec<_>>>()?;
            let dir = vmcontainer::devenv::project_dir(project.as_deref())?;
            let fwd = vmcontainer::devenv::claude::forwarded_auth(&dir, auth.as_deref());
            let names: Vec<&str> = fwd.auth.iter().map(|a| a.as_str()).collect();
            eprintln!(
                "claude in the dev environment on {} at /app; forwarding: {}",
                dir.display(),
                if names.is_empty() {
                    "nothing".to_string()
                } else {
                    names.join(", ")
                }
            );
            let c = dev
                .claude(ClaudeOptions {
                    project: project.clone(),
                    model,
                    auth,
                    env,
                    args,
                    boot: vm.boot_options(false, project),
                    io: forwarding(),
                })
                .await?;
            return Ok(code(c));
        }
    }
    Ok(ExitCode::SUCCESS)
}
