//! `Manager.follow`: the serial log as an async iterator of lines.
//!
//! The follower is opened on the first `next()` (so `follow()` itself does
//! no I/O), yields existing output, then new lines within milliseconds, and
//! ends when the container stops. `return()` (what `break` in a
//! `for await` loop calls) closes it at once, even while a `next()` is
//! waiting, so nothing keeps the process alive afterwards.

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::{AsyncGenerator, ToNapiValue};
use napi::{sys, Env};
use napi_derive::napi;
use tokio::sync::{watch, Mutex};
use vmcontainer::{LinuxKitManager, LogFollower};

use crate::error::to_napi;
use crate::promise::blocking;

/// The TypeScript name of what the iterator yields.
mod ts {
    use napi_derive::napi;

    /// One line of a container's serial log, without its line ending.
    #[napi]
    #[allow(dead_code)] // Only its TypeScript declaration is used.
    pub type LogLine = String;
}

/// A line, or the error that ended the stream; converted on the JS thread,
/// where a core error becomes a coded JS `Error` that rejects `next()`.
pub struct LogLine(vmcontainer::Result<String>);

impl ToNapiValue for LogLine {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.0 {
            Ok(line) => unsafe { String::to_napi_value(env, line) },
            Err(e) => Err(to_napi(&Env::from_raw(env), &e)),
        }
    }
}

struct Inner {
    manager: LinuxKitManager,
    reference: String,
    follower: Mutex<Option<LogFollower>>,
    closed: watch::Sender<bool>,
}

impl Inner {
    async fn next_line(self: Arc<Self>) -> Option<LogLine> {
        let mut closed = self.closed.subscribe();
        if *closed.borrow() {
            return None;
        }
        let mut slot = self.follower.lock().await;
        if slot.is_none() {
            let (m, r) = (self.manager.clone(), self.reference.clone());
            match blocking(move || m.follow_logs(&r)).await {
                Ok(f) => *slot = Some(f),
                Err(e) => {
                    self.closed.send_replace(true);
                    return Some(LogLine(Err(e)));
                }
            }
        }
        let follower = slot.as_mut()?;
        let item = tokio::select! {
            item = follower.next_line() => item,
            _ = closed.wait_for(|c| *c) => None,
        };
        if !matches!(item, Some(Ok(_))) {
            // Ended, failed or closed: release the file and its watcher now.
            *slot = None;
            self.closed.send_replace(true);
        }
        item.map(LogLine)
    }
}

/// An async iterator over a container's log lines (`for await ... of`).
#[napi(async_iterator)]
pub struct LogStream {
    inner: Arc<Inner>,
}

impl LogStream {
    /// A stream over the log of `reference`; nothing is opened yet.
    pub fn new(manager: LinuxKitManager, reference: String) -> Self {
        LogStream {
            inner: Arc::new(Inner {
                manager,
                reference,
                follower: Mutex::new(None),
                closed: watch::channel(false).0,
            }),
        }
    }
}

#[napi]
impl LogStream {
    /// Stops following: a pending `next()` resolves as done and the log file
    /// is released. Called by `break` in a `for await` loop.
    #[napi]
    pub fn close(&self) {
        self.inner.closed.send_replace(true);
    }
}

#[napi]
impl AsyncGenerator for LogStream {
    type Yield = LogLine;
    type Next = ();
    type Return = ();

    fn next(
        &mut self,
        _value: Option<Self::Next>,
    ) -> impl Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        let inner = self.inner.clone();
        async move { Ok(inner.next_line().await) }
    }

    fn complete(
        &mut self,
        _value: Option<Self::Return>,
    ) -> impl Future<Output = napi::Result<Option<Self::Yield>>> + Send + 'static {
        self.inner.closed.send_replace(true);
        let inner = self.inner.clone();
        async move {
            // Drop the follower unless a pending next() holds it (that one
            // wakes on `closed` and drops it itself).
            if let Ok(mut slot) = inner.follower.try_lock() {
                *slot = None;
            }
            Ok(None)
        }
    }
}
