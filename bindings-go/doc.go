// Package vmcontainer runs LinuxKit virtual-machine images as lightweight
// containers, from Go. It is a thin layer over libvmcontainer, the C ABI of
// the vmcontainer runtime (include/vmcontainer.h), linked through cgo and
// pkg-config: every behaviour lives in the library, so a Go program shares
// the state file, logs, templates and messages of the vmcontainer CLI and of
// the Python and Node modules.
//
// # Conventions
//
//   - Every call that waits (Run, Stop, Exec, WaitReady, Follow, Install,
//     Boot, the dev sessions, ...) takes a context.Context. Cancelling it
//     stops the wait and the call returns ctx.Err(). Starting a VM is the
//     one thing not cut short (that could leave a VM without a record):
//     Run and Start check the context before they begin, and a foreground
//     run is ended by stopping its VM.
//   - Errors are *Error values with a Kind; compare them with errors.Is
//     against the sentinels (ErrNotFound, ErrTimeout, ...) or take them
//     apart with errors.As.
//   - Durations are time.Duration; memory is in MiB (MemoryMB).
//   - Runs are detached by default, as in every library face of
//     vmcontainer (Rust, C, Python, Node): a call that blocks until the VM
//     powers off surprises the author of a program that wants to start a
//     VM and talk to it. RunOptions.Foreground, or RunAttached with an
//     io.Writer for the serial output, runs in the foreground.
//   - Handles (Manager, DevOps, LogStream) own C resources: Close them when
//     done. A finalizer is only a safety net.
//
// Every value this package returns is copied into Go memory, and every C
// object is released before the call returns (the package's tests check
// the library's count of live objects, under the race detector).
package vmcontainer
