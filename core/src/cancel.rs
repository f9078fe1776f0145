//! Cancelling a blocking call from another thread: a Go context, a C
//! caller's watchdog, a Node abort signal. The async API needs none of this
//! (dropping a future cancels it); callers of [`crate::blocking`] that sit
//! in a blocking call need a handle another thread can fire.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::error::{Error, Result};

/// A flag that, once set, ends the waits of every call it was given to
/// with [`Error::Cancelled`]. Cheap to clone; clones share the flag.
/// Cancelling is permanent and may happen from any thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    notify: Notify,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every call using this token, now and later.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        self.inner.notify.notify_waiters();
    }

    /// Whether [`Self::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the token is cancelled.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.inner.notify.notified();
            let mut notified = std::pin::pin!(notified);
            // Registered before the flag is read, so a cancel in between
            // is not missed.
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Runs `fut` unless or until the token is cancelled; then `fut` is
    /// dropped (which stops what it was waiting for) and the result is
    /// [`Error::Cancelled`] naming `what`.
    pub async fn guard<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        if self.is_cancelled() {
            return Err(Error::Cancelled(what.to_string()));
        }
        tokio::select! {
            biased;
            _ = self.cancelled() => Err(Error::Cancelled(what.to_string())),
            r = fut => r,
        }
    }

    /// [`Error::Cancelled`] for `what` if the token is cancelled.
    pub fn check(&self, what: &str) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled(what.to_string()))
        } else {
            Ok(())
        }
    }
}

/// [`CancelToken::guard`] for an optional token.
pub async fn guard<T>(
    token: Option<&CancelToken>,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match token {
        Some(t) => t.guard(what, fut).await,
        None => fut.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn cancel_from_another_thread_ends_a_wait() {
        let t = CancelToken::new();
        let t2 = t.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            t2.cancel();
        });
        let started = Instant::now();
        let r: Result<()> = t
            .guard("the test wait", async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
            .await;
        assert!(started.elapsed() < Duration::from_secs(10));
        let e = r.unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Cancelled);
        assert!(e.to_string().contains("the test wait"), "{e}");
        // Permanent: later calls fail at once.
        assert!(t.guard("again", async { Ok(1) }).await.is_err());
        assert!(t.check("x").is_err());
    }

    #[tokio::test]
    async fn an_uncancelled_token_lets_the_call_finish() {
        let t = CancelToken::new();
        assert_eq!(t.guard("x", async { Ok(7) }).await.unwrap(), 7);
        assert_eq!(guard(None, "x", async { Ok(8) }).await.unwrap(), 8);
        assert!(!t.is_cancelled());
    }
}
