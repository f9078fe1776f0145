package vmcontainer

/*
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>

extern vmc_error_code_t vmc_go_run_attached(const vmc_manager_t *m, const char *image,
	const vmc_run_options_t *opts, uintptr_t handle, vmc_container_t **out, vmc_error_t **err);
extern vmc_error_code_t vmc_go_run_template_attached(const vmc_manager_t *m, const char *name,
	const char *const *vars, size_t count, const vmc_run_options_t *opts, uintptr_t handle,
	vmc_container_t **out, vmc_error_t **err);
*/
import "C"

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"runtime"
	"runtime/cgo"
	"sort"
	"strconv"
	"time"
	"unsafe"
)

// DefaultStopTimeout is how long Stop usually gives the guest to power off
// (ACPI) before the hypervisor is signalled.
const DefaultStopTimeout = time.Duration(C.VMC_DEFAULT_STOP_TIMEOUT_MS) * time.Millisecond

// DefaultReadyTimeout is how long WaitReady waits when its context has no
// deadline.
const DefaultReadyTimeout = 120 * time.Second

// ManagerOptions chooses a Manager's home and hypervisor. The zero value
// means $VMCONTAINER_HOME (else ~/.core) and the best hypervisor installed.
type ManagerOptions struct {
	// Home is the root directory (state file, logs, templates).
	Home string
	// Hypervisor is "qemu" or "hyperkit" (any case).
	Hypervisor string
}

// Manager runs and manages containers under one home directory. It is safe
// for concurrent use, and several managers (also in other processes, and
// the vmcontainer CLI) may share a home: state changes are serialised by a
// lock on the state file. Close it when done; containers keep running.
type Manager struct {
	ptr *C.vmc_manager_t
}

// NewManager opens the containers of opts.Home (nil opts: the defaults). A
// host without any hypervisor still gets a manager (List, Logs and Remove
// work; Run fails naming what to install).
func NewManager(opts *ManagerOptions) (*Manager, error) {
	if opts == nil {
		opts = &ManagerOptions{}
	}
	home, hv := optCString(opts.Home), optCString(opts.Hypervisor)
	defer free(home)
	defer free(hv)
	var ptr *C.vmc_manager_t
	var e *C.vmc_error_t
	if err := check(C.vmc_manager_new(home, hv, &ptr, &e), e); err != nil {
		return nil, err
	}
	m := &Manager{ptr: ptr}
	runtime.SetFinalizer(m, (*Manager).Close)
	return m, nil
}

// Close releases the manager. Containers keep running. Calling it twice is
// harmless.
func (m *Manager) Close() error {
	if m.ptr != nil {
		C.vmc_manager_free(m.ptr)
		m.ptr = nil
	}
	runtime.SetFinalizer(m, nil)
	return nil
}

// Home is the manager's absolute home directory.
func (m *Manager) Home() string {
	defer runtime.KeepAlive(m)
	return goStr(C.vmc_manager_home(m.ptr))
}

// Hypervisor is the name of the hypervisor the manager starts VMs with.
func (m *Manager) Hypervisor() string {
	defer runtime.KeepAlive(m)
	return goStr(C.vmc_manager_hypervisor(m.ptr))
}

// do runs call with the manager's handle: when ctx can be cancelled, a
// handle bound to a cancellation token that ctx fires. A cancellation ctx
// caused is returned as ctx.Err().
func (m *Manager) do(ctx context.Context, call func(*C.vmc_manager_t) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	defer runtime.KeepAlive(m)
	if ctx.Done() == nil {
		return call(m.ptr)
	}
	t := newToken(ctx)
	defer t.release()
	var view *C.vmc_manager_t
	var e *C.vmc_error_t
	if err := check(C.vmc_manager_with_cancel(m.ptr, t.ptr, &view, &e), e); err != nil {
		return err
	}
	defer C.vmc_manager_free(view)
	return contextError(ctx, call(view))
}

// PortMapping forwards a host TCP port to a guest port.
type PortMapping struct {
	// Host is the host port.
	Host uint16
	// Guest is the guest port.
	Guest uint16
	// Address is the host address this port listens on (the zero Addr:
	// RunOptions.BindAddress, else 127.0.0.1).
	Address netip.Addr
}

// Volume shares a host directory with the guest over 9p; the mount tag is
// the guest path's base name.
type Volume struct {
	// Host is the host directory.
	Host string
	// Guest is the absolute guest path.
	Guest string
}

// RunOptions says how to run a container. The zero value runs detached
// with 1024 MiB, 1 CPU and SSH on a free loopback port.
type RunOptions struct {
	// Name is the container's name (1-64 of [A-Za-z0-9_.-]; default the
	// ID).
	Name string
	// Foreground makes Run wait until the VM exits (the serial output
	// goes to the log; RunAttached streams it). The default is detached.
	Foreground bool
	// MemoryMB is the memory in MiB (0: 1024, or the template's MEMORY).
	MemoryMB uint32
	// CPUs is the number of virtual CPUs (0: 1, or the template's CPUS).
	CPUs uint32
	// Ports are forwarded TCP ports.
	Ports []PortMapping
	// PortSpecs are forwarded ports written like the CLI's -p:
	// "HOST:GUEST" or "IP:HOST:GUEST".
	PortSpecs []string
	// Volumes are shared directories.
	Volumes []Volume
	// SSHPort is the loopback host port for the guest's SSH (0: a free
	// one).
	SSHPort uint16
	// SSHKey is the private key Exec uses.
	SSHKey string
	// BindAddress is the address forwarded ports listen on (default
	// 127.0.0.1).
	BindAddress string
}

// options builds the C options; release them with
// vmc_run_options_free.
func (o *RunOptions) options(detach bool) (*C.vmc_run_options_t, error) {
	if o == nil {
		o = &RunOptions{}
	}
	opts := C.vmc_run_options_new()
	ok := false
	defer func() {
		if !ok {
			C.vmc_run_options_free(opts)
		}
	}()
	var e *C.vmc_error_t
	step := func(code C.vmc_error_code_t) error { return check(code, e) }
	withString := func(s string, f func(*C.char) C.vmc_error_code_t) error {
		cs := cString(s)
		defer free(cs)
		return step(f(cs))
	}
	if err := step(C.vmc_run_options_set_detach(opts, C.bool(detach && !o.Foreground), &e)); err != nil {
		return nil, err
	}
	if o.Name != "" {
		if err := withString(o.Name, func(s *C.char) C.vmc_error_code_t {
			return C.vmc_run_options_set_name(opts, s, &e)
		}); err != nil {
			return nil, err
		}
	}
	if o.MemoryMB != 0 {
		if err := step(C.vmc_run_options_set_memory_mb(opts, C.uint32_t(o.MemoryMB), &e)); err != nil {
			return nil, err
		}
	}
	if o.CPUs != 0 {
		if err := step(C.vmc_run_options_set_cpus(opts, C.uint32_t(o.CPUs), &e)); err != nil {
			return nil, err
		}
	}
	if o.SSHPort != 0 {
		if err := step(C.vmc_run_options_set_ssh_port(opts, C.uint16_t(o.SSHPort), &e)); err != nil {
			return nil, err
		}
	}
	if o.SSHKey != "" {
		if err := withString(o.SSHKey, func(s *C.char) C.vmc_error_code_t {
			return C.vmc_run_options_set_ssh_key(opts, s, &e)
		}); err != nil {
			return nil, err
		}
	}
	if o.BindAddress != "" {
		if err := withString(o.BindAddress, func(s *C.char) C.vmc_error_code_t {
			return C.vmc_run_options_set_bind_address(opts, s, &e)
		}); err != nil {
			return nil, err
		}
	}
	for _, p := range o.Ports {
		var err error
		if p.Address.IsValid() {
			// The library's own port syntax carries the address:
			// "IP:HOST:GUEST", an IPv6 address in brackets.
			spec := netip.AddrPortFrom(p.Address, p.Host).String() + ":" + strconv.Itoa(int(p.Guest))
			err = withString(spec, func(s *C.char) C.vmc_error_code_t {
				return C.vmc_run_options_add_port_spec(opts, s, &e)
			})
		} else {
			err = step(C.vmc_run_options_add_port(opts, C.uint16_t(p.Host), C.uint16_t(p.Guest), &e))
		}
		if err != nil {
			return nil, err
		}
	}
	for _, p := range o.PortSpecs {
		if err := withString(p, func(s *C.char) C.vmc_error_code_t {
			return C.vmc_run_options_add_port_spec(opts, s, &e)
		}); err != nil {
			return nil, err
		}
	}
	for _, v := range o.Volumes {
		h, g := cString(v.Host), cString(v.Guest)
		code := C.vmc_run_options_add_volume(opts, h, g, &e)
		free(h)
		free(g)
		if err := step(code); err != nil {
			return nil, err
		}
	}
	ok = true
	return opts, nil
}

// runCall is one of the run calls of the C library, with its options
// built.
type runCall func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t

// attachedCall is one of the foreground run calls, writing the serial
// output to the io.Writer behind a cgo.Handle.
type attachedCall func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, h C.uintptr_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t

// start makes a call of the run family with the C options of opts
// (detached unless opts says otherwise, or in the foreground) and returns
// its container.
func (m *Manager) start(ctx context.Context, opts *RunOptions, detach bool, call runCall) (*Container, error) {
	o, err := opts.options(detach)
	if err != nil {
		return nil, err
	}
	defer C.vmc_run_options_free(o)
	var c *C.vmc_container_t
	err = m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(call(mp, o, &c, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return takeContainer(c), nil
}

// startAttached is start in the foreground, the serial output written to
// output.
func (m *Manager) startAttached(ctx context.Context, opts *RunOptions, output io.Writer, call attachedCall) (*Container, error) {
	h := cgo.NewHandle(output)
	defer h.Delete()
	return m.start(ctx, opts, false, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return call(mp, o, C.uintptr_t(h), c, e)
	})
}

// Run starts a new container from image (.iso, .qcow2, .vmdk, .raw/.img,
// or a LinuxKit NAME-kernel with its NAME-initrd.img). Detached (the
// default) it returns once the VM process is up, and the VM outlives this
// program; with opts.Foreground it returns when the VM exits. Startup
// failures (a port in use, a bad image) come back here with the
// hypervisor's own message. nil opts means the defaults.
//
// ctx is checked before the VM starts; starting is not cut short. A
// foreground run whose ctx is cancelled is ended by stopping its VM.
func (m *Manager) Run(ctx context.Context, image string, opts *RunOptions) (*Container, error) {
	if opts != nil && opts.Foreground {
		return m.RunAttached(ctx, image, opts, io.Discard)
	}
	img := cString(image)
	defer free(img)
	return m.start(ctx, opts, true, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_run(mp, img, o, c, e)
	})
}

// RunAttached runs a container in the foreground (whatever opts says),
// writing its serial output to output as it arrives, until the VM exits;
// the final status is "stopped" when the hypervisor exited 0, else
// "error". Cancelling ctx stops the VM (ACPI power-down first) and returns
// ctx.Err(). An error from output.Write is ignored: the VM's log keeps
// everything.
func (m *Manager) RunAttached(ctx context.Context, image string, opts *RunOptions, output io.Writer) (*Container, error) {
	img := cString(image)
	defer free(img)
	return m.startAttached(ctx, opts, output, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, h C.uintptr_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_go_run_attached(mp, img, o, h, c, e)
	})
}

// templateVars is vars as sorted "KEY=VALUE" strings.
func templateVars(vars map[string]string) []string {
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// RunTemplate runs a container from LinuxKit template name (built-in, then
// ./.core/linuxkit/ of the working directory, then HOME/linuxkit/): the
// template with vars substituted is built into an ISO with `linuxkit build
// --format iso-bios`, and run as Run does. Memory and CPUs come from the
// template's MEMORY and CPUS unless opts sets them. The build stops when
// ctx is cancelled.
func (m *Manager) RunTemplate(ctx context.Context, name string, vars map[string]string, opts *RunOptions) (*Container, error) {
	if opts != nil && opts.Foreground {
		return m.RunTemplateAttached(ctx, name, vars, opts, io.Discard)
	}
	cn := cString(name)
	defer free(cn)
	list := templateVars(vars)
	cv, release := cStrings(list)
	defer release()
	return m.start(ctx, opts, true, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_run_template(mp, cn, cv, C.size_t(len(list)), o, c, e)
	})
}

// RunTemplateAttached is RunTemplate in the foreground, with the serial
// output written to output as in RunAttached.
func (m *Manager) RunTemplateAttached(ctx context.Context, name string, vars map[string]string, opts *RunOptions, output io.Writer) (*Container, error) {
	cn := cString(name)
	defer free(cn)
	list := templateVars(vars)
	cv, release := cStrings(list)
	defer release()
	return m.startAttached(ctx, opts, output, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, h C.uintptr_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_go_run_template_attached(mp, cn, cv, C.size_t(len(list)), o, h, c, e)
	})
}

// refCall runs one of the (manager, reference, ..., container out, error)
// calls.
func (m *Manager) refCall(ctx context.Context, ref string, call func(*C.vmc_manager_t, *C.char, **C.vmc_container_t, **C.vmc_error_t) C.vmc_error_code_t) (*Container, error) {
	r := cString(ref)
	defer free(r)
	var c *C.vmc_container_t
	err := m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(call(mp, r, &c, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return takeContainer(c), nil
}

// Start boots a stopped container again, with the disk it wrote before.
// ctx is checked before the VM starts; starting is not cut short.
func (m *Manager) Start(ctx context.Context, ref string) (*Container, error) {
	return m.refCall(ctx, ref, func(mp *C.vmc_manager_t, r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_start(mp, r, c, e)
	})
}

// Stop stops a running container: ACPI power-down so the guest can flush
// its disks, then SIGTERM once timeout has passed (DefaultStopTimeout is
// the usual value), then SIGKILL. ref is an ID, a unique ID prefix or a
// name. Cancelling ctx stops waiting; the container keeps whatever state
// it reached.
func (m *Manager) Stop(ctx context.Context, ref string, timeout time.Duration) (*Container, error) {
	ms := C.uint64_t(0)
	if timeout > 0 {
		ms = C.uint64_t(timeout.Milliseconds())
	}
	return m.refCall(ctx, ref, func(mp *C.vmc_manager_t, r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_stop(mp, r, ms, c, e)
	})
}

// Remove deletes a container's record, log, disk overlay and runtime
// files. A running container is refused (ErrRunning) unless force, which
// stops it first.
func (m *Manager) Remove(ctx context.Context, ref string, force bool) (*Container, error) {
	return m.refCall(ctx, ref, func(mp *C.vmc_manager_t, r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_remove(mp, r, C.bool(force), c, e)
	})
}

// WaitReady waits until the guest answers on its QEMU guest agent or its
// SSH server (pinning SSH host keys): until ctx's deadline, or
// DefaultReadyTimeout when it has none. It fails early with ErrNotRunning
// if the VM stops meanwhile; at the deadline it returns ctx.Err()
// (context.DeadlineExceeded).
func (m *Manager) WaitReady(ctx context.Context, ref string) (*Container, error) {
	c, _, err := m.WaitReadyVia(ctx, ref, TransportAuto)
	return c, err
}

// WaitReadyVia is WaitReady for one transport (TransportAuto: whichever
// answers first), and says which transport answered.
func (m *Manager) WaitReadyVia(ctx context.Context, ref string, transport Transport) (*Container, Transport, error) {
	t, err := transport.code()
	if err != nil {
		return nil, "", err
	}
	timeout := DefaultReadyTimeout
	d, hasDeadline := ctx.Deadline()
	if hasDeadline {
		timeout = time.Until(d)
		if timeout < 0 {
			timeout = 0
		}
	}
	ms := C.uint64_t(timeout.Milliseconds())
	var answered C.int
	c, err := m.refCall(ctx, ref, func(mp *C.vmc_manager_t, r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_wait_ready_via(mp, r, ms, t, c, &answered, e)
	})
	// The library's timeout was the context's deadline: the same expiry,
	// which the library may notice a moment before the context does.
	if hasDeadline && isKind(err, KindTimeout) {
		return nil, "", context.DeadlineExceeded
	}
	if err != nil {
		return nil, "", err
	}
	return c, transportOf(answered), nil
}

// List returns every known container, oldest first; a "running" one whose
// VM is gone is reported (and recorded) as stopped.
func (m *Manager) List() ([]Container, error) {
	var list *C.vmc_container_list_t
	var e *C.vmc_error_t
	code := C.vmc_manager_list(m.ptr, &list, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	return takeList(list), nil
}

// Get returns one container by ID, unique ID prefix or name (ErrNotFound,
// ErrAmbiguous).
func (m *Manager) Get(ref string) (*Container, error) {
	return m.refCall(context.Background(), ref, func(mp *C.vmc_manager_t, r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_get(mp, r, c, e)
	})
}

// Details is everything known about a container: the record and where its
// files are.
type Details struct {
	Container
	// LogPath is the serial console log.
	LogPath string `json:"log_path"`
	// InstanceDir is the persistent per-container directory.
	InstanceDir string `json:"instance_dir"`
	// RuntimeDir holds the sockets and the pid file.
	RuntimeDir string `json:"runtime_dir"`
	// Disk is the copy-on-write overlay the guest writes to (disk images).
	Disk string `json:"disk"`
	// QMPSocket is the QEMU monitor socket.
	QMPSocket string `json:"qmp_socket"`
	// ConsoleSocket is the serial console socket.
	ConsoleSocket string `json:"console_socket"`
	// Transports are the ways the guest can be reached now
	// (TransportAgent, TransportSSH); empty when it is not running or
	// nothing answers yet.
	Transports []Transport `json:"transports"`
	// Forwards are the forwarded ports with the address each listens on
	// (the SSH forward, always on 127.0.0.1, is SSHPort).
	Forwards []Forward `json:"forwards"`
}

// Forward is one forwarded port as Inspect shows it.
type Forward struct {
	// Bind is the host address it listens on.
	Bind netip.Addr `json:"bind"`
	// Host is the host port.
	Host uint16 `json:"host"`
	// Guest is the guest port.
	Guest uint16 `json:"guest"`
}

// Inspect returns the record of a container and the paths of its files.
func (m *Manager) Inspect(ref string) (*Details, error) {
	r := cString(ref)
	defer free(r)
	var p *C.char
	var e *C.vmc_error_t
	code := C.vmc_manager_inspect(m.ptr, r, &p, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	var d Details
	if err := json.Unmarshal([]byte(takeString(p)), &d); err != nil {
		return nil, &Error{Kind: KindInternal, Code: int(C.VMC_ERROR_INTERNAL), Message: "decoding inspect output: " + err.Error()}
	}
	d.StatusText = string(d.Status)
	if !d.Status.known() {
		d.Status = StatusUnknown
	}
	if len(d.Forwards) > 0 {
		d.BindAddresses = make(map[uint16]netip.Addr, len(d.Forwards))
		for _, f := range d.Forwards {
			d.BindAddresses[f.Host] = f.Bind
		}
	}
	return &d, nil
}

// Logs returns the container's whole serial log so far.
func (m *Manager) Logs(ref string) ([]byte, error) {
	r := cString(ref)
	defer free(r)
	var p *C.char
	var n C.size_t
	var e *C.vmc_error_t
	code := C.vmc_manager_logs(m.ptr, r, &p, &n, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	defer C.vmc_string_free(p)
	return C.GoBytes(unsafePointer(p), C.int(n)), nil
}

// ExecResult is the outcome of a command run in a guest.
type ExecResult struct {
	// ExitCode is the command's exit status (255 when SSH itself failed).
	ExitCode int
	// Stdout is its standard output.
	Stdout []byte
	// Stderr is its standard error.
	Stderr []byte
}

// ExecOptions says how ExecWith runs a command.
type ExecOptions struct {
	// Input is the command's standard input, sent whole (nil: none). Over
	// the guest agent it may be at most 32 MiB; TransportAuto then uses
	// SSH for more.
	Input []byte
	// Transport forces one way to reach the guest ("": TransportAuto).
	Transport Transport
}

// Exec runs cmd (an argv: each element arrives as one argument, nothing is
// interpreted by a local shell) in the guest as root and returns its exit
// code and output: over the QEMU guest agent when it answers (no SSH key
// needed), else SSH. A non-zero exit code is not an error; the transport
// failing is. A guest that just started is waited for (up to 120 s).
// Repeated SSH calls reuse one connection. Cancelling ctx ends the wait
// and kills the local ssh client.
func (m *Manager) Exec(ctx context.Context, ref string, cmd ...string) (*ExecResult, error) {
	return m.ExecWith(ctx, ref, cmd, nil)
}

// ExecWith is Exec with options: bytes for the command's standard input
// and the transport. A command killed by a signal reports 128 + the
// signal as its exit code, as a shell does. nil opts means Exec's
// defaults.
func (m *Manager) ExecWith(ctx context.Context, ref string, cmd []string, opts *ExecOptions) (*ExecResult, error) {
	if opts == nil {
		opts = &ExecOptions{}
	}
	t, err := opts.Transport.code()
	if err != nil {
		return nil, err
	}
	r := cString(ref)
	defer free(r)
	argv, release := cStrings(cmd)
	defer release()
	var input *C.uint8_t
	if len(opts.Input) > 0 {
		input = (*C.uint8_t)(C.CBytes(opts.Input))
		defer C.free(unsafe.Pointer(input))
	}
	var res *C.vmc_exec_result_t
	err = m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_manager_exec_with(mp, r, argv, C.size_t(len(cmd)), input, C.size_t(len(opts.Input)), t, &res, &e), e)
	})
	if err != nil {
		return nil, err
	}
	defer C.vmc_exec_result_free(res)
	var no, ne C.size_t
	out := C.vmc_exec_result_stdout(res, &no)
	errOut := C.vmc_exec_result_stderr(res, &ne)
	return &ExecResult{
		ExitCode: int(C.vmc_exec_result_exit_code(res)),
		Stdout:   C.GoBytes(unsafePointer(out), C.int(no)),
		Stderr:   C.GoBytes(unsafePointer(errOut), C.int(ne)),
	}, nil
}
