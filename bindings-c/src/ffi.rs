//! The boundary itself. Every exported function runs its body through
//! [`guard`], which catches panics and turns failures into a code plus an
//! optional error object, and reads its arguments through the helpers
//! here, which turn NULL and invalid UTF-8 into `VMC_ERROR_INVALID_ARGUMENT`
//! instead of undefined behaviour.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::error::{vmc_error_code_t, vmc_error_t, Failure};

/// What an exported function's body returns.
pub(crate) type FfiResult<T> = Result<T, Failure>;

/// Runs `body`, catching panics, and reports its outcome: the return code,
/// and on failure an error object in `*err` when `err` is not NULL. `*err`
/// is set to NULL first, so it is NULL after every successful call.
///
/// # Safety
/// `err` is NULL or valid for writing one pointer.
pub(crate) unsafe fn guard(
    err: *mut *mut vmc_error_t,
    body: impl FnOnce() -> FfiResult<()>,
) -> vmc_error_code_t {
    if !err.is_null() {
        // SAFETY: the caller guarantees `err` is valid for writes.
        unsafe { err.write(ptr::null_mut()) };
    }
    let result = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(Failure::panic(p)));
    match result {
        Ok(()) => vmc_error_code_t::VMC_OK,
        Err(failure) => {
            let code = failure.code;
            if !err.is_null() {
                let boxed = into_handle(vmc_error_t::from(failure));
                // SAFETY: as above.
                unsafe { err.write(boxed) };
            }
            code
        }
    }
}

/// Runs `body` for a function that returns a value rather than a code:
/// a panic (or failure) yields `fallback`.
pub(crate) fn guard_value<T>(fallback: T, body: impl FnOnce() -> Option<T>) -> T {
    catch_unwind(AssertUnwindSafe(body))
        .ok()
        .flatten()
        .unwrap_or(fallback)
}

/// A required string argument.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that outlives `'a`.
pub(crate) unsafe fn str_arg<'a>(p: *const c_char, name: &str) -> FfiResult<&'a str> {
    if p.is_null() {
        return Err(Failure::argument(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL, and the caller guarantees a live C string.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map_err(|e| Failure::argument(format!("{name} is not valid UTF-8 ({e})")))
}

/// An optional string argument (NULL means absent).
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(p: *const c_char, name: &str) -> FfiResult<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded caller guarantee.
        unsafe { str_arg(p, name) }.map(Some)
    }
}

/// An array of `count` required strings.
///
/// # Safety
/// `p` is NULL or points to `count` pointers, each as for [`str_arg`].
pub(crate) unsafe fn str_array_arg<'a>(
    p: *const *const c_char,
    count: usize,
    name: &str,
) -> FfiResult<Vec<&'a str>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Failure::argument(format!("{name} is NULL")));
    }
    // SAFETY: non-NULL, and the caller guarantees `count` readable elements.
    let items = unsafe { std::slice::from_raw_parts(p, count) };
    items
        .iter()
        .enumerate()
        // SAFETY: each element is a live C string or NULL (checked).
        .map(|(i, s)| unsafe { str_arg(*s, &format!("{name}[{i}]")) })
        .collect()
}

/// A required handle argument.
///
/// # Safety
/// `p` is NULL or a live object of this library of type `T`, not mutated
/// elsewhere for `'a`.
pub(crate) unsafe fn obj<'a, T>(p: *const T, name: &str) -> FfiResult<&'a T> {
    // SAFETY: the caller guarantees a live object or NULL.
    unsafe { p.as_ref() }.ok_or_else(|| Failure::argument(format!("{name} is NULL")))
}

/// A required handle argument that the call mutates.
///
/// # Safety
/// `p` is NULL or a live object of this library of type `T`, used by no
/// one else for `'a`.
pub(crate) unsafe fn obj_mut<'a, T>(p: *mut T, name: &str) -> FfiResult<&'a mut T> {
    // SAFETY: the caller guarantees a live, exclusively used object or NULL.
    unsafe { p.as_mut() }.ok_or_else(|| Failure::argument(format!("{name} is NULL")))
}

/// A place the caller wants a result written to.
pub(crate) struct Out<T>(NonNull<T>);

impl<T> Out<T> {
    /// Stores `value` (without reading or dropping the old content, which
    /// may be uninitialised C memory).
    pub(crate) fn set(&self, value: T) {
        // SAFETY: `out_arg` checked non-NULL, and its caller guaranteed the
        // place is valid for writes for the whole call.
        unsafe { self.0.as_ptr().write(value) }
    }
}

/// A required out-pointer; it is cleared to NULL at once so that it is
/// NULL whenever the call fails.
///
/// # Safety
/// `p` is NULL or valid for writing one `*mut T` for the whole call.
pub(crate) unsafe fn out_arg<T>(p: *mut *mut T, name: &str) -> FfiResult<Out<*mut T>> {
    let out = NonNull::new(p)
        .map(Out)
        .ok_or_else(|| Failure::argument(format!("{name} is NULL")))?;
    out.set(ptr::null_mut());
    Ok(out)
}

/// An optional out-pointer (NULL: the caller does not want the value).
///
/// # Safety
/// As for [`out_arg`].
pub(crate) unsafe fn opt_out_arg<T>(p: *mut *mut T) -> Option<Out<*mut T>> {
    let out = NonNull::new(p).map(Out)?;
    out.set(ptr::null_mut());
    Some(out)
}

/// A required out-parameter for a plain value.
///
/// # Safety
/// `p` is NULL or valid for writing one `T` for the whole call.
pub(crate) unsafe fn out_value<T>(p: *mut T, name: &str) -> FfiResult<Out<T>> {
    NonNull::new(p)
        .map(Out)
        .ok_or_else(|| Failure::argument(format!("{name} is NULL")))
}

/// Moves `value` to the heap for the caller; it comes back through
/// [`free_handle`].
pub(crate) fn into_handle<T>(value: T) -> *mut T {
    LIVE.fetch_add(1, Ordering::Relaxed);
    Box::into_raw(Box::new(value))
}

/// Objects and strings handed to the caller and not yet released (see
/// `vmc_live_objects`).
static LIVE: AtomicI64 = AtomicI64::new(0);

/// The number of objects and strings this library has handed to its caller
/// and not yet had back through a `*_free` function (or `vmc_string_free`).
/// Static strings are not counted. For leak checks in the test suites of
/// programs and bindings: the count before and after a piece of work that
/// releases everything it got is the same. A string released with plain
/// `free(3)` instead of `vmc_string_free` is not seen.
#[no_mangle]
pub extern "C" fn vmc_live_objects() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Releases a string from [`malloc_bytes`] that never reached the caller.
///
/// # Safety
/// `p` is NULL or came from [`malloc_bytes`] and is freed only once.
pub(crate) unsafe fn free_bytes(p: *mut c_char) {
    if !p.is_null() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller guarantees a pointer from `malloc`.
        unsafe { libc::free(p.cast()) }
    }
}

/// Releases a handle made by [`into_handle`]. NULL is ignored.
///
/// # Safety
/// `p` is NULL or came from `into_handle::<T>` and is freed only once.
pub(crate) unsafe fn free_handle<T>(p: *mut T) {
    if !p.is_null() {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: the caller guarantees the pointer came from Box::into_raw
        // and gives up ownership here.
        let owned = unsafe { Box::from_raw(p) };
        // A panicking destructor must not unwind into C; the value is gone
        // either way.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(owned)));
    }
}

/// Copies `bytes` into a new `malloc` block with a terminating NUL, for the
/// caller to release with `vmc_string_free` (which is `free(3)`).
pub(crate) fn malloc_bytes(bytes: &[u8]) -> FfiResult<*mut c_char> {
    // SAFETY: plain allocation; the result is checked for NULL.
    let p = unsafe { libc::malloc(bytes.len() + 1) }.cast::<u8>();
    if p.is_null() {
        return Err(Failure::internal(format!(
            "out of memory allocating {} bytes",
            bytes.len() + 1
        )));
    }
    // SAFETY: `p` has room for len + 1 bytes and does not overlap `bytes`.
    unsafe {
        ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len());
        p.add(bytes.len()).write(0);
    }
    LIVE.fetch_add(1, Ordering::Relaxed);
    Ok(p.cast())
}

/// A C string for text that is kept inside a handle. Text never contains
/// NUL in practice (paths, IDs, messages); if one does, it is dropped
/// rather than truncating the string or failing.
pub(crate) fn to_cstring(s: impl Into<Vec<u8>>) -> CString {
    let mut bytes: Vec<u8> = s.into();
    bytes.retain(|b| *b != 0);
    CString::new(bytes).unwrap_or_default()
}

/// A millisecond count from C as a duration, capped at ten years so that
/// "wait forever" values such as `UINT64_MAX` cannot overflow a deadline.
pub(crate) fn millis(ms: u64) -> Duration {
    vmcontainer::options::millis_u64(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::vmc_error_code_t::*;

    #[test]
    fn guard_reports_failures_and_panics() {
        let mut err: *mut vmc_error_t = ptr::null_mut();
        // SAFETY: `err` is a valid place for the whole call.
        let code = unsafe { guard(&mut err, || Err(Failure::argument("x is NULL"))) };
        assert_eq!(code, VMC_ERROR_INVALID_ARGUMENT);
        assert!(!err.is_null());
        // SAFETY: `err` was just produced by the library.
        unsafe { crate::error::vmc_error_free(err) };
        // SAFETY: as above.
        let code = unsafe { guard(&mut err, || panic!("inner")) };
        assert_eq!(code, VMC_ERROR_INTERNAL);
        // SAFETY: as above.
        unsafe { crate::error::vmc_error_free(err) };
        // SAFETY: as above.
        assert_eq!(unsafe { guard(&mut err, || Ok(())) }, VMC_OK);
        assert!(err.is_null());
        // A NULL error place is allowed.
        // SAFETY: NULL is allowed.
        let code = unsafe { guard(ptr::null_mut(), || Err(Failure::argument("y"))) };
        assert_eq!(code, VMC_ERROR_INVALID_ARGUMENT);
    }

    #[test]
    fn strings_are_checked() {
        // SAFETY: NULL and a live literal.
        unsafe {
            assert!(str_arg(ptr::null(), "id")
                .unwrap_err()
                .message
                .contains("id"));
            assert_eq!(str_arg(c"abc".as_ptr(), "id").unwrap(), "abc");
            let bad = [0xffu8, 0xfe, 0];
            let e = str_arg(bad.as_ptr().cast(), "name").unwrap_err();
            assert!(e.message.contains("UTF-8"), "{}", e.message);
            assert_eq!(opt_str_arg(ptr::null(), "x").unwrap(), None);
        }
        assert_eq!(to_cstring("a\0b").as_bytes(), b"ab");
        assert_eq!(millis(u64::MAX), millis(u64::MAX - 1));
    }
}
