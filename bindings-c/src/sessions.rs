//! Interactive sessions in the dev VM: shell (or the serial console),
//! serve, test and claude, and the commands serve and test would run.
//!
//! One options object, `vmc_devenv_session_options_t`, describes any of
//! them; each call reads the settings that apply to it. A session's
//! standard streams are this process's by default, or file descriptors the
//! caller passes (`vmc_devenv_session_options_set_stdio`), e.g. pipes a Go
//! program copies to and from its `io.Reader` and `io.Writer`s.

use std::ffi::c_char;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::ptr;

use vmcontainer::devenv::{
    Auth, BootOptions, ClaudeOptions, ServeOptions, ShellOptions, TestOptions,
};
use vmcontainer::session::SessionIo;

use crate::devenv::{vmc_devenv_boot_options_t, vmc_devenv_t};
use crate::error::{vmc_error_code_t, vmc_error_t, Failure};
use crate::ffi::{
    self, guard, guard_value, malloc_bytes, obj, obj_mut, out_arg, out_value, str_arg,
    str_array_arg, FfiResult,
};

/// What to run in the dev VM and how. Defaults: the current directory as
/// project, a login shell (shell), the detected command (serve, test),
/// host and guest port 8000 (serve), the SSH agent forwarded when there
/// is one, every available credential (claude), this process's stdin,
/// stdout and stderr. Use from one thread at a time; release with
/// `vmc_devenv_session_options_free`.
#[allow(non_camel_case_types)]
#[derive(Debug, Default)]
pub struct vmc_devenv_session_options_t {
    project: Option<PathBuf>,
    command: Vec<String>,
    console: bool,
    no_agent: bool,
    path: Option<PathBuf>,
    ports: Option<(u16, u16)>,
    test_name: Option<String>,
    model: Option<String>,
    auth: Option<Vec<Auth>>,
    env: Vec<(String, String)>,
    boot: BootOptions,
    io: SessionIo,
}

impl vmc_devenv_session_options_t {
    fn shell(&self) -> ShellOptions {
        ShellOptions {
            console: self.console,
            command: self.command.clone(),
            no_agent: self.no_agent,
            project: self.project.clone(),
            io: self.io.clone(),
        }
    }

    fn serve(&self) -> ServeOptions {
        let d = ServeOptions::default();
        let (port, guest_port) = self.ports.unwrap_or((d.port, d.guest_port));
        ServeOptions {
            project: self.project.clone(),
            path: self.path.clone(),
            port,
            guest_port,
            command: self.command.clone(),
            io: self.io.clone(),
        }
    }

    fn test(&self) -> TestOptions {
        TestOptions {
            project: self.project.clone(),
            name: self.test_name.clone(),
            command: self.command.clone(),
            io: self.io.clone(),
        }
    }

    fn claude(&self) -> ClaudeOptions {
        ClaudeOptions {
            project: self.project.clone(),
            model: self.model.clone(),
            auth: self.auth.clone(),
            env: self.env.clone(),
            args: self.command.clone(),
            boot: self.boot.clone(),
            io: self.io.clone(),
        }
    }
}

/// The options behind a possibly-NULL pointer (NULL: the defaults).
///
/// # Safety
/// `opts` is NULL or live.
unsafe fn options(
    opts: *const vmc_devenv_session_options_t,
    fallback: &vmc_devenv_session_options_t,
) -> &vmc_devenv_session_options_t {
    // SAFETY: forwarded caller guarantee.
    unsafe { opts.as_ref() }.unwrap_or(fallback)
}

/// New session options with the defaults; NULL only if memory is
/// exhausted.
#[no_mangle]
pub extern "C" fn vmc_devenv_session_options_new() -> *mut vmc_devenv_session_options_t {
    guard_value(ptr::null_mut(), || {
        Some(ffi::into_handle(vmc_devenv_session_options_t::default()))
    })
}

/// Releases session options (and the descriptors they hold). NULL is
/// ignored.
///
/// # Safety
/// `opts` is NULL or from `vmc_devenv_session_options_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn vmc_devenv_session_options_free(opts: *mut vmc_devenv_session_options_t) {
    // SAFETY: forwarded caller guarantee.
    unsafe { ffi::free_handle(opts) }
}

/// Runs `f` on the options behind `opts`.
///
/// # Safety
/// `opts` is NULL or live and used by no other thread; `err` NULL or
/// writable.
unsafe fn with(
    opts: *mut vmc_devenv_session_options_t,
    err: *mut *mut vmc_error_t,
    f: impl FnOnce(&mut vmc_devenv_session_options_t) -> FfiResult<()>,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { guard(err, || f(obj_mut(opts, "options")?)) }
}

/// The project directory (default: the current directory); the VM must
/// have it, or a directory above it, at `/app`.
///
/// # Safety
/// `opts` is NULL or live and not used concurrently; string arguments are
/// NULL or C strings; `err` is NULL or writable. (The same holds for every
/// setter.)
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_project(
    opts: *mut vmc_devenv_session_options_t,
    project: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.project = Some(PathBuf::from(str_arg(project, "project")?));
            Ok(())
        })
    }
}

/// The command, as `argc` arguments (each arrives as one argument): what
/// shell runs instead of a login shell, what serve and test run instead of
/// the detected command, or claude's further arguments.
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`; `argv` is NULL or points
/// to `argc` C strings.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_command(
    opts: *mut vmc_devenv_session_options_t,
    argv: *const *const c_char,
    argc: usize,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.command = if argv.is_null() && argc == 0 {
                Vec::new()
            } else {
                str_array_arg(argv, argc, "argv")?
                    .into_iter()
                    .map(str::to_string)
                    .collect()
            };
            Ok(())
        })
    }
}

/// Shell only: attach to the VM's serial console instead of SSH (a
/// terminal on stdin detaches with Ctrl-]; the session also ends when
/// stdin does).
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_console(
    opts: *mut vmc_devenv_session_options_t,
    console: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.console = console;
            Ok(())
        })
    }
}

/// Shell only: whether to forward this process's SSH agent
/// (`SSH_AUTH_SOCK`) when there is one (default true).
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_forward_agent(
    opts: *mut vmc_devenv_session_options_t,
    forward: bool,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.no_agent = !forward;
            Ok(())
        })
    }
}

/// Serve only: the subdirectory of the project to serve from.
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_path(
    opts: *mut vmc_devenv_session_options_t,
    path: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.path = Some(PathBuf::from(str_arg(path, "path")?));
            Ok(())
        })
    }
}

/// Serve only: the host port on 127.0.0.1 and the guest port the server
/// listens on (0 keeps the default, 8000).
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_ports(
    opts: *mut vmc_devenv_session_options_t,
    host_port: u16,
    guest_port: u16,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            let d = ServeOptions::default();
            let or = |p: u16, d: u16| if p == 0 { d } else { p };
            o.ports = Some((or(host_port, d.port), or(guest_port, d.guest_port)));
            Ok(())
        })
    }
}

/// Test only: run the command with this name in `.core/test.yaml`.
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_test_name(
    opts: *mut vmc_devenv_session_options_t,
    name: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.test_name = Some(str_arg(name, "name")?.to_string());
            Ok(())
        })
    }
}

/// Claude only: the model (`--model`).
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_model(
    opts: *mut vmc_devenv_session_options_t,
    model: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.model = Some(str_arg(model, "model")?.to_string());
            Ok(())
        })
    }
}

/// Claude only: the credentials to forward, `count` names among
/// `"anthropic"`, `"gh"`, `"ssh"`, `"git"` (0 forwards none; without this
/// call every available one is). An unknown name →
/// `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`; `names` is NULL or points
/// to `count` C strings.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_auth(
    opts: *mut vmc_devenv_session_options_t,
    names: *const *const c_char,
    count: usize,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            let names = if names.is_null() && count == 0 {
                Vec::new()
            } else {
                str_array_arg(names, count, "names")?
            };
            o.auth = Some(
                names
                    .iter()
                    .map(|n| n.parse::<Auth>())
                    .collect::<vmcontainer::Result<Vec<_>>>()?,
            );
            Ok(())
        })
    }
}

/// Claude only: an extra environment variable for the session (staged
/// through SSH's stdin like the credentials, never on a command line).
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_add_env(
    opts: *mut vmc_devenv_session_options_t,
    key: *const c_char,
    value: *const c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.env.push((
                str_arg(key, "key")?.to_string(),
                str_arg(value, "value")?.to_string(),
            ));
            Ok(())
        })
    }
}

/// Claude only: how to boot the dev VM when it is not running (copied;
/// NULL restores the defaults).
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`; `boot` is NULL or live.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_boot_options(
    opts: *mut vmc_devenv_session_options_t,
    boot: *const vmc_devenv_boot_options_t,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.boot = boot.as_ref().map(|b| b.inner.clone()).unwrap_or_default();
            Ok(())
        })
    }
}

/// A duplicate of the caller's descriptor `fd`, or `None` for -1.
///
/// # Safety
/// `fd` is -1 or an open descriptor for the duration of the call.
unsafe fn dup_fd(fd: i32, name: &str) -> FfiResult<Option<OwnedFd>> {
    if fd == -1 {
        return Ok(None);
    }
    if fd < 0 {
        return Err(Failure::argument(format!(
            "{name} is {fd}: pass an open descriptor or -1"
        )));
    }
    // SAFETY: the caller guarantees `fd` is open for the whole call; it is
    // only duplicated, never closed.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed
        .try_clone_to_owned()
        .map(Some)
        .map_err(|e| Failure::argument(format!("{name} {fd}: {e}")))
}

/// The session's standard streams: `stdin_fd`, `stdout_fd`, `stderr_fd`
/// (-1 for this process's own). The descriptors are duplicated: the caller
/// keeps (and closes) its own. A pipe's write end that the session is done
/// with is closed when the options are freed.
///
/// # Safety
/// See `vmc_devenv_session_options_set_project`; each descriptor is -1 or
/// open for the duration of the call.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_session_options_set_stdio(
    opts: *mut vmc_devenv_session_options_t,
    stdin_fd: i32,
    stdout_fd: i32,
    stderr_fd: i32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        with(opts, err, |o| {
            o.io = SessionIo::new(
                dup_fd(stdin_fd, "stdin_fd")?,
                dup_fd(stdout_fd, "stdout_fd")?,
                dup_fd(stderr_fd, "stderr_fd")?,
            );
            Ok(())
        })
    }
}

/// Runs one session and stores its exit code.
///
/// # Safety
/// `d` live; `opts` NULL or live; `exit_code` writable; `err` NULL or
/// writable.
unsafe fn session(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    exit_code: *mut i32,
    err: *mut *mut vmc_error_t,
    run: impl FnOnce(&vmc_devenv_t, &vmc_devenv_session_options_t) -> vmcontainer::Result<i32>,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let out = out_value(exit_code, "exit_code")?;
            let fallback = vmc_devenv_session_options_t::default();
            out.set(run(d, options(opts, &fallback))?);
            Ok(())
        })
    }
}

/// Opens a login shell in the running dev VM over SSH (or runs the
/// options' command; or attaches to the serial console) with the options'
/// streams, and stores the remote exit code in `*exit_code` (0 for the
/// console). A pseudo-terminal is used when stdin and stdout are
/// terminals. Not running → `VMC_ERROR_NOT_RUNNING`.
///
/// # Safety
/// `d` is live; `opts` NULL or live; `exit_code` writable; `err` NULL or
/// writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_shell(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    exit_code: *mut i32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { session(d, opts, exit_code, err, |d, o| d.inner.shell(o.shell())) }
}

/// Serves the project from the running dev VM: the options' command or the
/// detected one, in `/app` (or the options' path under it), with the guest
/// port forwarded to `127.0.0.1` for as long as it runs. Returns when the
/// server exits, or — through a handle from `vmc_devenv_with_cancel` —
/// when that token is cancelled (the server is killed; exit code 130).
///
/// # Safety
/// As for `vmc_devenv_shell`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_serve(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    exit_code: *mut i32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { session(d, opts, exit_code, err, |d, o| d.inner.serve(o.serve())) }
}

/// Runs the project's tests in the running dev VM — the options' command,
/// else the one named by the test name in `.core/test.yaml`, else its
/// default, else the detected one — with the file's `env`, and stores
/// their exit code. No command found → `VMC_ERROR_INVALID_INPUT`.
///
/// # Safety
/// As for `vmc_devenv_shell`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_test(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    exit_code: *mut i32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { session(d, opts, exit_code, err, |d, o| d.inner.test(o.test())) }
}

/// Runs Claude Code in the dev VM (booting it with the options' boot
/// options when it is not running) on the project at `/app`, forwarding
/// the selected credentials without putting any secret on a command line,
/// and stores its exit code.
///
/// # Safety
/// As for `vmc_devenv_shell`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_claude(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    exit_code: *mut i32,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { session(d, opts, exit_code, err, |d, o| d.inner.claude(o.claude())) }
}

/// Stores a command line the session would run.
///
/// # Safety
/// As for `session`, with `out` writable.
unsafe fn command_line(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
    pick: impl FnOnce(&vmc_devenv_t, &vmc_devenv_session_options_t) -> vmcontainer::Result<String>,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        guard(err, || {
            let d = obj(d, "devenv")?;
            let out = out_arg(out, "out")?;
            let fallback = vmc_devenv_session_options_t::default();
            let line = pick(d, options(opts, &fallback))?;
            out.set(malloc_bytes(line.as_bytes())?);
            Ok(())
        })
    }
}

/// The shell command line `vmc_devenv_test` would run for `opts`, without
/// running it (needs no VM). Free `*out` with `vmc_string_free`.
///
/// # Safety
/// `d` is live; `opts` NULL or live; `out` writable; `err` NULL or writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_test_command(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { command_line(d, opts, out, err, |d, o| d.inner.test_command(&o.test())) }
}

/// The command `vmc_devenv_serve` would run for `opts` (given or
/// detected), without running it. Free `*out` with `vmc_string_free`.
///
/// # Safety
/// As for `vmc_devenv_test_command`.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn vmc_devenv_serve_command(
    d: *const vmc_devenv_t,
    opts: *const vmc_devenv_session_options_t,
    out: *mut *mut c_char,
    err: *mut *mut vmc_error_t,
) -> vmc_error_code_t {
    // SAFETY: forwarded caller guarantees.
    unsafe { command_line(d, opts, out, err, |d, o| d.inner.serve_command(&o.serve())) }
}
