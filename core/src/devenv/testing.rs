//! `dev test`: run the project's tests in the dev VM. The command is, in
//! priority order: the one given, the one named in `.core/test.yaml`, the
//! detected one. `env` from `.core/test.yaml` is set for it (staged through
//! stdin, like every environment the dev VM receives).

use std::path::PathBuf;

use super::detect::detect_test_with;
use super::devops::{project_dir, DevOps};
use super::guest::{self, env_file, session_command, staged_env_path};
use super::test_config::{load_test_config, test_config_path};
use super::DevenvError;
use crate::error::Result;
use crate::ssh::quote_remote;

/// What to test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestOptions {
    /// Project directory (default: the current directory).
    pub project: Option<PathBuf>,
    /// A command named in `.core/test.yaml` `commands`.
    pub name: Option<String>,
    /// An explicit command (each element one argument); wins over the rest.
    pub command: Vec<String>,
    /// The session's streams (default: this process's).
    pub io: crate::session::SessionIo,
}

impl DevOps {
    /// The shell command line `test` runs for `opts`.
    pub fn test_command(&self, opts: &TestOptions) -> Result<String> {
        let dir = project_dir(opts.project.as_deref())?;
        let config = load_test_config(&dir)?;
        if !opts.command.is_empty() {
            return Ok(quote_remote(&opts.command));
        }
        if let Some(name) = &opts.name {
            let c = config.unwrap_or_default();
            return c.named(name).map(str::to_string).ok_or_else(|| {
                DevenvError::UnknownTestCommand {
                    name: name.clone(),
                    path: test_config_path(&dir),
                    known: c.commands.iter().map(|c| c.name.clone()).collect(),
                }
                .into()
            });
        }
        detect_test_with(&dir, config.as_ref())
            .ok_or_else(|| DevenvError::NoTestCommand { dir }.into())
    }

    /// Runs the tests attached to the terminal; returns their exit code.
    pub async fn test(&self, opts: TestOptions) -> Result<i32> {
        let c = self.running().await?;
        let project = project_dir(opts.project.as_deref())?;
        let dir = self.guest_project(&c, Some(&project)).await?;
        let command = self.test_command(&opts)?;
        let env = load_test_config(&project)?.unwrap_or_default().env;
        self.ensure_mounted(&c).await?;
        let staged = if env.is_empty() {
            None
        } else {
            let path = staged_env_path();
            let script = guest::stage_script(&[(path.clone(), env_file(&env)?.into_bytes())])?;
            guest::run_script(
                self.manager(),
                &c.id,
                "staging the test environment",
                &script,
            )
            .await?;
            Some(path)
        };
        let argv = session_command(staged.as_deref(), &dir, &command);
        self.manager()
            .exec_interactive_agent(&c.id, &argv, opts.io.is_terminal(), false, &opts.io)
            .await
    }
}
