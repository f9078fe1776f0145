//! Core futures as JS Promises.
//!
//! The future runs on napi-rs's tokio runtime; only the conversion of its
//! result (and the creation of an error object) happens on the JS thread.
//! Synchronous core calls go through [`blocking`], which moves them to
//! tokio's blocking pool, so neither the event loop nor libuv's threadpool
//! ever waits for the runtime.

use std::future::Future;

use napi::bindgen_prelude::{PromiseRaw, ToNapiValue};
use napi::Env;

use crate::error::to_napi;

/// Spawns `fut` and returns a Promise for `convert(output)`; a core error
/// rejects the Promise with a coded JS `Error`.
pub fn spawn<'env, T, V, F>(
    env: &'env Env,
    fut: F,
    convert: fn(T) -> V,
) -> napi::Result<PromiseRaw<'env, V>>
where
    T: Send + 'static,
    V: ToNapiValue + 'static,
    F: Future<Output = vmcontainer::Result<T>> + Send + 'static,
{
    env.spawn_future_with_callback(async move { Ok(fut.await) }, move |env, out| {
        out.map(convert).map_err(|e| to_napi(env, &e))
    })
}

/// Runs a synchronous core call on tokio's blocking pool.
pub async fn blocking<T, F>(f: F) -> vmcontainer::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> vmcontainer::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        // A panic in the core: let napi-rs turn it into a rejection.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}
