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
use crate::cancel::{self, CancelToken};
use crate::container::Container;
use crate::error::Result;
use crate::home::Home;
use crate::sources::download::Progress;

/// Blocking version of [`super::DevOps`]. Made with [`DevOps::with_cancel`],
/// its waits end with [`crate::Error::Cancelled`] once the token is
/// cancelled; `serve` then stops the server and returns 130, like Ctrl-C.
#[derive(Debug, Clone)]
pub struct DevOps {
    inner: super::DevOps,
    cancel: Option<CancelToken>,
}

impl DevOps {
    /// The dev environment of `home` (default: `$VMCONTAINER_HOME` or
    /// `~/.core`).
    pub fn new(home: Option<&Path>) -> Result<Self> {
        Ok(Self::from_async(super::DevOps::new(Home::resolve(home)?)?))
    }

    /// The dev environment of `home` whose VM runs on `hypervisor`
    /// (`"qemu"`, `"hyperkit"`; default: detected).
    pub fn with_hypervisor(home: Option<&Path>, hypervisor: Option<&str>) -> Result<Self> {
        let m = crate::blocking::Manager::new(home, hypervisor)?;
        Ok(Self::from_async(super::DevOps::with_manager(
            m.inner().clone(),
        )?))
    }

    /// Wraps an async one.
    pub fn from_async(inner: super::DevOps) -> Self {
        DevOps {
            inner,
            cancel: None,
        }
    }

    /// The same dev environment whose waits end when `token` is cancelled.
    pub fn with_cancel(&self, token: CancelToken) -> Self {
        DevOps {
            inner: self.inner.clone(),
            cancel: Some(token),
        }
    }

    /// The async one underneath.
    pub fn inner(&self) -> &super::DevOps {
        &self.inner
    }

    fn wait<T>(&self, what: &str, fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        runtime().block_on(cancel::guard(self.cancel.as_ref(), what, fut))
    }

    /// See [`super::DevOps::is_installed`].
    pub fn is_installed(&self) -> bool {
        self.inner.is_installed()
    }
    /// See [`super::DevOps::install`]; `progress` runs on this thread.
    pub fn install(&self, progress: Progress<'_>) -> Result<InstallReport> {
        self.wait("install", self.inner.install(progress))
    }
    /// See [`super::DevOps::check_update`].
    pub fn check_update(&self) -> Result<UpdateInfo> {
        self.wait("update check", self.inner.check_update())
    }
    /// See [`super::DevOps::update`].
    pub fn update(&self, progress: Progress<'_>) -> Result<Option<InstallReport>> {
        self.wait("update", self.inner.update(progress))
    }
    /// See [`super::DevOps::boot`].
    pub fn boot(&self, opts: BootOptions) -> Result<Container> {
        self.wait("boot of the dev environment", self.inner.boot(opts))
    }
    /// See [`super::DevOps::stop`].
    pub fn stop(&self) -> Result<Container> {
        self.wait("stop of the dev environment", self.inner.stop())
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
        self.wait("dev shell", self.inner.shell(opts))
    }
    /// See [`super::DevOps::serve`]; runs until the server exits, or until
    /// the token is cancelled (then 130).
    pub fn serve(&self, opts: ServeOptions) -> Result<i32> {
        let token = self.cancel.clone();
        let stop = async move {
            match token {
                Some(t) => t.cancelled().await,
                None => std::future::pending().await,
            }
        };
        runtime().block_on(self.inner.serve(opts, stop))
    }
    /// See [`super::DevOps::test`].
    pub fn test(&self, opts: TestOptions) -> Result<i32> {
        self.wait("dev test", self.inner.test(opts))
    }
    /// See [`super::DevOps::claude`].
    pub fn claude(&self, opts: ClaudeOptions) -> Result<i32> {
        self.wait("claude", self.inner.claude(opts))
    }
    /// See [`super::DevOps::test_command`].
    pub fn test_command(&self, opts: &TestOptions) -> Result<String> {
        self.inner.test_command(opts)
    }
    /// See [`super::DevOps::serve_command`].
    pub fn serve_command(&self, opts: &ServeOptions) -> Result<String> {
        self.inner.serve_command(opts)
    }
}
