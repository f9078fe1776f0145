//! `vmc_progress_fn`: transfer progress (the dev image's install and
//! update, registry push and pull) handed to a C callback on the caller's
//! thread.

use std::ffi::c_void;
use std::future::Future;
use std::sync::mpsc::{channel, Sender};

use vmcontainer::blocking::runtime;
use vmcontainer::CancelToken;

use crate::error::Failure;
use crate::ffi::FfiResult;

/// Receives transfer progress: `downloaded` bytes so far (sent, for a
/// push) of `total` (-1 when neither the source nor the server says).
/// Called on the thread that made the call taking it (`vmc_devenv_install`,
/// `vmc_manager_pull`, ...), never after that call returns.
#[allow(non_camel_case_types)]
pub type vmc_progress_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, downloaded: u64, total: i64)>;

/// Runs a transfer on the runtime, cancellable by `cancel`, and hands its
/// progress to `progress` here, on the caller's thread: the callback and
/// `user_data` need not be thread-safe. `run` gets the sender that the
/// core's progress closure feeds.
///
/// # Safety
/// `progress` is NULL or a valid function fitting `user_data`.
pub(crate) unsafe fn with_progress<T, F, Fut>(
    cancel: Option<CancelToken>,
    what: String,
    progress: vmc_progress_fn,
    user_data: *mut c_void,
    run: F,
) -> FfiResult<T>
where
    T: Send + 'static,
    F: FnOnce(Sender<(u64, Option<u64>)>) -> Fut,
    Fut: Future<Output = vmcontainer::Result<T>> + Send + 'static,
{
    let (tx, rx) = channel::<(u64, Option<u64>)>();
    let fut = run(tx);
    let label = what.clone();
    let task = runtime()
        .spawn(async move { vmcontainer::cancel::guard(cancel.as_ref(), &label, fut).await });
    // The loop ends when the task drops its sender, i.e. when it is done.
    for (done, total) in rx {
        if let Some(cb) = progress {
            let total = total.and_then(|t| i64::try_from(t).ok()).unwrap_or(-1);
            // SAFETY: the caller guarantees `cb` and `user_data` fit
            // together.
            unsafe { cb(user_data, done, total) };
        }
    }
    Ok(runtime()
        .block_on(task)
        .map_err(|e| Failure::internal(format!("{what} failed: {e}")))??)
}

/// The core's progress closure over `tx`.
pub(crate) fn sender_sink(
    tx: Sender<(u64, Option<u64>)>,
) -> impl FnMut(u64, Option<u64>) + Send + 'static {
    move |done, total| {
        // The receiver outlives the task; a send fails only if the caller's
        // thread is gone, and then nobody wants the value.
        let _ = tx.send((done, total));
    }
}
