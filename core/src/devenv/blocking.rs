//! A blocking facade over [`super::DevOps`] for callers without an async
//! runtime (the C ABI, Python). Calls run on the process-wide runtime of
//! [`crate::blocking::runtime`]; progress callbacks run on the calling
//! thread.

use std::path::Path;

use super::{
    BootOptions, ClaudeOptions, DevStatus, InstallReport, ServeOptions, ShellOptions, TestOptions,
    UpdateInfo,
};
use crate::blocking::runtime;
use crate::container::Container;
use crate::error::Result;
use crate::home::Home;
use crate::sources::download::Progress;

/// Blocking version of [`super::DevOps`].
#[derive(Debug, Clone)]
pub struct DevOps {
    inner: super::DevOps,
}

impl DevOps {
    /// The dev environment of `home` (default: `$VMCONTAINER_HOME` or
    /// `~/.core`).
    pub fn new(home: Option<&Path>) -> Result<Self> {
        let home = match home {
            Some(h) => Home::new(crate::home::absolute(h)),
            None => Home::from_env()?,
        };
        Ok(DevOps {
            inner: super::DevOps::new(home)?,
        })
    }

    /// Wraps an async one.
    pub fn from_async(inner: super::DevOps) -> Self {
        DevOps { inner }
    }

    /// The async one underneath.
    pub fn inner(&self) -> &super::DevOps {
        &self.inner
    }

    /// See [`super::DevOps::is_installed`].
    pub fn is_installed(&self) -> bool {
        self.inner.is_installed()
    }
    /// See [`super::DevOps::install`].
    pub fn install(&self, progress: Progress<'_>) -> Result<InstallReport> {
        runtime().block_on(self.inner.install(progress))
    }
    /// See [`super::DevOps::check_update`].
    pub fn check_update(&self) -> Result<UpdateInfo> {
        runtime().block_on(self.inner.check_update())
    }
    /// See [`super::DevOps::update`].
    pub fn update(&self, progress: Progress<'_>) -> Result<Option<InstallReport>> {
        runtime().block_on(self.inner.update(progress))
    }
    /// See [`super::DevOps::boot`].
    pub fn boot(&self, opts: BootOptions) -> Result<Container> {
        runtime().block_on(self.inner.boot(opts))
    }
    /// See [`super::DevOps::stop`].
    pub fn stop(&self) -> Result<Container> {
        runtime().block_on(self.inner.stop())
    }
    /// See [`super::DevOps::is_running`].
    pub fn is_running(&self) -> Result<bool> {
        self.inner.is_running()
    }
    /// See [`super::DevOps::status`].
    pub fn status(&self) -> Result<DevStatus> {
        self.inner.status()
    }
    /// See [`super::DevOps::shell`].
    pub fn shell(&self, opts: ShellOptions) -> Result<i32> {
        runtime().block_on(self.inner.shell(opts))
    }
    /// See [`super::DevOps::serve`]; runs until the server exits.
    pub fn serve(&self, opts: ServeOptions) -> Result<i32> {
        runtime().block_on(self.inner.serve(opts, std::future::pending()))
    }
    /// See [`super::DevOps::test`].
    pub fn test(&self, opts: TestOptions) -> Result<i32> {
        runtime().block_on(self.inner.test(opts))
    }
    /// See [`super::DevOps::claude`].
    pub fn claude(&self, opts: ClaudeOptions) -> Result<i32> {
        runtime().block_on(self.inner.claude(opts))
    }
}
