//! JS callbacks and signals that long core operations talk to.
//!
//! - [`ProgressSink`]: download progress to a JS `onProgress` through a
//!   threadsafe function, one call in flight at a time (later values
//!   replace a value not yet sent, so a fast download never floods the
//!   event loop), and drained before the operation's Promise settles.
//! - [`StopSignal`]: an `AbortSignal` as a future that completes when it
//!   aborts, its listener removed when the operation ends (devenv's serve
//!   takes one; a build with only the `registry` feature does not use it).
#![cfg_attr(not(feature = "devenv"), allow(dead_code))]

use std::sync::Arc;

use napi::bindgen_prelude::{
    FnArgs, FromNapiValue, Function, FunctionRef, JsObjectValue, Object, ObjectRef, TypeName,
    Unknown, ValidateNapiValue,
};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{sys, Env, Status, ValueType};
use tokio::sync::watch;

use crate::callback::report_callback_error;

/// `(downloaded, total)` as JS numbers; `total` is `null` when unknown.
pub type ProgressArgs = FnArgs<(f64, Option<f64>)>;

/// A JS `onProgress(downloaded, total)`.
pub type ProgressCallback =
    ThreadsafeFunction<ProgressArgs, Unknown<'static>, ProgressArgs, Status, false>;

#[derive(Debug, Default)]
struct Slot {
    /// A call is queued or running on the JS thread.
    in_flight: bool,
    /// The latest value that arrived while one was in flight.
    pending: Option<(u64, Option<u64>)>,
}

struct Inner {
    callback: ProgressCallback,
    slot: watch::Sender<Slot>,
}

/// Marks the in-flight call finished when dropped: after the JS callback
/// returned, or when Node discarded the call without making it.
struct Delivered(Arc<Inner>);

impl Drop for Delivered {
    fn drop(&mut self) {
        self.0.slot.send_modify(|s| s.in_flight = false);
    }
}

impl Inner {
    fn deliver(self: &Arc<Self>, (downloaded, total): (u64, Option<u64>)) {
        let done = Delivered(self.clone());
        // Not queued (Node is shutting down): the closure, and with it
        // `done`, is dropped here, so nothing waits for it.
        self.callback.call_with_return_value(
            FnArgs::from((downloaded as f64, total.map(|t| t as f64))),
            ThreadsafeFunctionCallMode::NonBlocking,
            move |r, env| {
                report_callback_error(&env, r);
                drop(done);
                Ok(())
            },
        );
    }

    fn report(self: &Arc<Self>, value: (u64, Option<u64>)) {
        let mut send = false;
        self.slot.send_if_modified(|s| {
            if s.in_flight {
                s.pending = Some(value);
            } else {
                // Newer than anything left pending: that one is dropped.
                s.pending = None;
                s.in_flight = true;
                send = true;
            }
            false
        });
        if send {
            self.deliver(value);
        }
    }

    /// Waits until every value reported so far reached JS (the last one
    /// included) and its callback returned.
    async fn flush(self: &Arc<Self>) {
        let mut rx = self.slot.subscribe();
        loop {
            // The sender lives in `self`, so the wait cannot fail.
            let _ = rx.wait_for(|s| !s.in_flight).await;
            let mut next = None;
            self.slot.send_if_modified(|s| {
                if !s.in_flight {
                    next = s.pending.take();
                    s.in_flight = next.is_some();
                }
                false
            });
            match next {
                Some(v) => self.deliver(v),
                None => return,
            }
        }
    }
}

/// Where a core download reports progress; a no-op without a callback.
pub struct ProgressSink(Option<Arc<Inner>>);

impl ProgressSink {
    /// A sink for `callback` (if any).
    pub fn new(callback: Option<ProgressCallback>) -> Self {
        ProgressSink(callback.map(|callback| {
            Arc::new(Inner {
                callback,
                slot: watch::channel(Slot::default()).0,
            })
        }))
    }

    /// The `(downloaded, total)` callback the core calls.
    pub fn reporter(&self) -> impl FnMut(u64, Option<u64>) + Send + '_ {
        move |downloaded, total| {
            if let Some(inner) = &self.0 {
                inner.report((downloaded, total));
            }
        }
    }

    /// Delivers what is still pending and waits for the JS callback to
    /// have seen it: call before the Promise may settle.
    pub async fn flush(&self) {
        if let Some(inner) = &self.0 {
            inner.flush().await;
        }
    }
}

/// `EventTarget.addEventListener` / `removeEventListener(type, listener)`.
type ListenerMethod<'a> =
    Function<'a, FnArgs<(&'a str, Function<'a, Unknown<'a>, ()>)>, Unknown<'a>>;

/// An `AbortSignal` (anything with `aborted` and `addEventListener`),
/// converted on the JS thread into a flag the runtime can wait for, plus
/// the listener that sets it. The listener holds no handle, so it never
/// keeps the process alive; [`Listener::remove`] takes it off the signal
/// when the operation ends.
pub struct StopSignal {
    aborted: watch::Receiver<bool>,
    listener: Option<Listener>,
}

/// The `abort` listener registered on a signal.
pub struct Listener {
    signal: ObjectRef<false>,
    listener: FunctionRef<Unknown<'static>, ()>,
}

/// Waits for a [`StopSignal`]'s abort (the part that goes to the runtime).
pub struct Aborted(Option<watch::Receiver<bool>>);

impl StopSignal {
    /// Splits into the flag (for the runtime) and the listener (which must
    /// stay on the JS thread to be removed there).
    pub fn split(signal: Option<StopSignal>) -> (Aborted, Option<Listener>) {
        match signal {
            Some(s) => (Aborted(Some(s.aborted)), s.listener),
            None => (Aborted(None), None),
        }
    }
}

impl Aborted {
    /// Completes when the signal aborts; never without one.
    pub async fn wait(self) {
        if let Some(mut rx) = self.0 {
            if rx.wait_for(|aborted| *aborted).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

impl Listener {
    /// Removes the listener from its signal (on the JS thread). Best
    /// effort: a signal that cannot remove it only keeps a closure that
    /// sets a flag nobody reads.
    pub fn remove(self, env: &Env) {
        if let Ok(signal) = self.signal.get_value(env) {
            let removed = signal
                .get_named_property::<ListenerMethod>("removeEventListener")
                .and_then(|remove| {
                    let listener = self.listener.borrow_back(env)?;
                    remove.apply(signal, FnArgs::from(("abort", listener)))
                });
            if removed.is_err() {
                // Leave no exception pending from a misbehaving signal.
                let mut thrown = std::ptr::null_mut();
                // SAFETY: on the JS thread with a live env.
                unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut thrown) };
            }
        }
        let _ = self.signal.unref(env);
    }
}

impl TypeName for StopSignal {
    fn type_name() -> &'static str {
        "AbortSignal"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ValidateNapiValue for StopSignal {}

impl FromNapiValue for StopSignal {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let invalid = || {
            napi::Error::new(
                Status::InvalidArg,
                "signal must be an AbortSignal (with `aborted` and `addEventListener`)",
            )
        };
        // SAFETY: forwarded from napi-rs, on the JS thread.
        let signal = unsafe { Object::from_napi_value(env, value) }.map_err(|_| invalid())?;
        let (tx, rx) = watch::channel(false);
        let aborted: Option<bool> = signal
            .get_named_property("aborted")
            .map_err(|_| invalid())?;
        if aborted.unwrap_or(false) {
            tx.send_replace(true);
            return Ok(StopSignal {
                aborted: rx,
                listener: None,
            });
        }
        let add: ListenerMethod = signal
            .get_named_property("addEventListener")
            .map_err(|_| invalid())?;
        let env = Env::from_raw(env);
        let listener: Function<Unknown, ()> =
            env.create_function_from_closure("onabort", move |_| {
                tx.send_replace(true);
                Ok(())
            })?;
        add.apply(signal, FnArgs::from(("abort", listener)))?;
        Ok(StopSignal {
            aborted: rx,
            listener: Some(Listener {
                signal: signal.create_ref()?,
                listener: listener.create_ref()?,
            }),
        })
    }
}
