//! User callbacks (`onOutput`, `onProgress`) called from the runtime's
//! threads through threadsafe functions: a throw inside one never crashes
//! the process.

use napi::bindgen_prelude::{Function, JsObjectValue, Object, Unknown};
use napi::{Env, JsValue};

/// On the JS thread, after a user callback returned: a throw is passed to
/// `process.emitWarning`, so it is visible but never fatal. Best effort:
/// nothing may escape to Node from here.
pub fn report_callback_error(env: &Env, result: napi::Result<Unknown<'_>>) {
    if let Err(e) = result {
        let _ = emit_warning(env, e);
    }
}

fn emit_warning(env: &Env, e: napi::Error) -> napi::Result<()> {
    let process: Object = env.get_global()?.get_named_property("process")?;
    let emit: Function<Unknown, Unknown> = process.get_named_property("emitWarning")?;
    let err = env.create_error(e)?;
    emit.call(err.to_unknown())?;
    Ok(())
}
