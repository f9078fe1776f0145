// Package vmc is a thin Go wrapper over libvmcontainer's C ABI
// (include/vmcontainer.h), as a Go user would write it: cgo finds the
// library through pkg-config, every object the library returns is freed
// with its *_free function, every C string made here with C.free, and
// runtime.KeepAlive keeps a Manager alive while C uses its handle.
package vmc

/*
#cgo pkg-config: vmcontainer
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>

extern int vmcGoLogLine(void *user_data, char *line, size_t len);

// The Go callback, called with a cgo.Handle as user_data.
static vmc_error_code_t vmc_go_logs_follow(const vmc_manager_t *m, const char *ref,
                                           uintptr_t handle, vmc_error_t **err) {
	return vmc_manager_logs_follow(m, ref, (vmc_log_line_fn)vmcGoLogLine, (void *)handle, err);
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Version is the version of the loaded library.
func Version() string { return C.GoString(C.vmc_version()) }

// HeaderVersion is the version of the header this package was built with.
const HeaderVersion = C.VMC_VERSION

// Error is a failed call: its code, its stable kind name and the message.
type Error struct {
	Code    int
	Kind    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Kind, e.Message) }

// Error codes (the subset this package's users test for).
const (
	ErrNotFound        = int(C.VMC_ERROR_NOT_FOUND)
	ErrNotRunning      = int(C.VMC_ERROR_NOT_RUNNING)
	ErrRunning         = int(C.VMC_ERROR_RUNNING)
	ErrInvalidInput    = int(C.VMC_ERROR_INVALID_INPUT)
	ErrTimeout         = int(C.VMC_ERROR_TIMEOUT)
	ErrTemplateVars    = int(C.VMC_ERROR_TEMPLATE_VARIABLES)
	ErrInvalidArgument = int(C.VMC_ERROR_INVALID_ARGUMENT)
)

// check turns a return code and error object into a Go error, freeing the
// object.
func check(code C.vmc_error_code_t, e *C.vmc_error_t) error {
	if code == C.VMC_OK {
		return nil
	}
	defer C.vmc_error_free(e)
	out := &Error{Code: int(code), Kind: C.GoString(C.vmc_error_code_name(C.int(code)))}
	if e != nil {
		out.Kind = C.GoString(C.vmc_error_kind(e))
		out.Message = C.GoString(C.vmc_error_message(e))
	}
	return out
}

// cstr makes a C copy of s; free it with C.free.
func cstr(s string) *C.char { return C.CString(s) }

// optStr is cstr, or NULL for "".
func optStr(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

// takeString copies a library-owned string and frees it.
func takeString(p *C.char, n C.size_t) string {
	defer C.vmc_string_free(p)
	if p == nil {
		return ""
	}
	return C.GoStringN(p, C.int(n))
}

// Container is a copy of a container snapshot.
type Container struct {
	ID, Name, Image, Status, Hypervisor, Accel, SSHKey, StartedAt, StoppedAt string
	PID                                                                      int
	MemoryMB, CPUs                                                           uint32
	SSHPort                                                                  uint16
	Format                                                                   string
	Ports                                                                    map[uint16]uint16
}

func goStr(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// copyContainer reads a borrowed snapshot into Go memory.
func copyContainer(c *C.vmc_container_t) Container {
	out := Container{
		ID:         goStr(C.vmc_container_id(c)),
		Name:       goStr(C.vmc_container_name(c)),
		Image:      goStr(C.vmc_container_image(c)),
		Status:     goStr(C.vmc_container_status_name(c)),
		Hypervisor: goStr(C.vmc_container_hypervisor(c)),
		Accel:      goStr(C.vmc_container_accel(c)),
		SSHKey:     goStr(C.vmc_container_ssh_key(c)),
		StartedAt:  goStr(C.vmc_container_started_at(c)),
		StoppedAt:  goStr(C.vmc_container_stopped_at(c)),
		PID:        int(C.vmc_container_pid(c)),
		MemoryMB:   uint32(C.vmc_container_memory_mb(c)),
		CPUs:       uint32(C.vmc_container_cpus(c)),
		SSHPort:    uint16(C.vmc_container_ssh_port(c)),
		Format:     goStr(C.vmc_image_format_name(C.int(C.vmc_container_format(c)))),
		Ports:      map[uint16]uint16{},
	}
	for i := C.size_t(0); i < C.vmc_container_port_count(c); i++ {
		var h, g C.uint16_t
		if C.vmc_container_port_at(c, i, &h, &g) {
			out.Ports[uint16(h)] = uint16(g)
		}
	}
	return out
}

// takeContainer copies an owned snapshot and frees it.
func takeContainer(c *C.vmc_container_t) Container {
	defer C.vmc_container_free(c)
	return copyContainer(c)
}

// Manager manages containers under one home directory. Close it when done
// (a finalizer is only a safety net).
type Manager struct {
	ptr *C.vmc_manager_t
}

// NewManager creates a manager; "" means the default home or hypervisor.
func NewManager(home, hypervisor string) (*Manager, error) {
	h, hv := optStr(home), optStr(hypervisor)
	defer C.free(unsafe.Pointer(h))
	defer C.free(unsafe.Pointer(hv))
	var ptr *C.vmc_manager_t
	var e *C.vmc_error_t
	if err := check(C.vmc_manager_new(h, hv, &ptr, &e), e); err != nil {
		return nil, err
	}
	m := &Manager{ptr: ptr}
	runtime.SetFinalizer(m, (*Manager).Close)
	return m, nil
}

// Close frees the manager; containers keep running.
func (m *Manager) Close() {
	if m.ptr != nil {
		C.vmc_manager_free(m.ptr)
		m.ptr = nil
	}
	runtime.SetFinalizer(m, nil)
}

// Home is the manager's absolute home directory.
func (m *Manager) Home() string {
	defer runtime.KeepAlive(m)
	return goStr(C.vmc_manager_home(m.ptr))
}

// RunOptions mirrors vmc_run_options_t.
type RunOptions struct {
	Name     string
	Detach   bool
	MemoryMB uint32
	CPUs     uint32
	SSHKey   string
	Ports    []string // "HOST:GUEST" or "IP:HOST:GUEST"
}

func buildOptions(o RunOptions) (*C.vmc_run_options_t, error) {
	opts := C.vmc_run_options_new()
	var e *C.vmc_error_t
	fail := func(code C.vmc_error_code_t) error {
		if err := check(code, e); err != nil {
			C.vmc_run_options_free(opts)
			return err
		}
		return nil
	}
	if err := fail(C.vmc_run_options_set_detach(opts, C.bool(o.Detach), &e)); err != nil {
		return nil, err
	}
	if o.Name != "" {
		s := cstr(o.Name)
		defer C.free(unsafe.Pointer(s))
		if err := fail(C.vmc_run_options_set_name(opts, s, &e)); err != nil {
			return nil, err
		}
	}
	if o.MemoryMB != 0 {
		if err := fail(C.vmc_run_options_set_memory_mb(opts, C.uint32_t(o.MemoryMB), &e)); err != nil {
			return nil, err
		}
	}
	if o.CPUs != 0 {
		if err := fail(C.vmc_run_options_set_cpus(opts, C.uint32_t(o.CPUs), &e)); err != nil {
			return nil, err
		}
	}
	if o.SSHKey != "" {
		s := cstr(o.SSHKey)
		defer C.free(unsafe.Pointer(s))
		if err := fail(C.vmc_run_options_set_ssh_key(opts, s, &e)); err != nil {
			return nil, err
		}
	}
	for _, p := range o.Ports {
		s := cstr(p)
		code := C.vmc_run_options_add_port_spec(opts, s, &e)
		C.free(unsafe.Pointer(s))
		if err := fail(code); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// Run starts a container from image.
func (m *Manager) Run(image string, o RunOptions) (Container, error) {
	opts, err := buildOptions(o)
	if err != nil {
		return Container{}, err
	}
	defer C.vmc_run_options_free(opts)
	img := cstr(image)
	defer C.free(unsafe.Pointer(img))
	var c *C.vmc_container_t
	var e *C.vmc_error_t
	code := C.vmc_manager_run(m.ptr, img, opts, &c, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return Container{}, err
	}
	return takeContainer(c), nil
}

// refCall runs one of the (manager, reference, ..., out container, err)
// calls and returns the container it produced, if any.
func (m *Manager) refCall(ref string, call func(*C.char, **C.vmc_container_t, **C.vmc_error_t) C.vmc_error_code_t) (Container, error) {
	r := cstr(ref)
	defer C.free(unsafe.Pointer(r))
	var c *C.vmc_container_t
	var e *C.vmc_error_t
	code := call(r, &c, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return Container{}, err
	}
	return takeContainer(c), nil
}

// Get returns one container by ID, ID prefix or name.
func (m *Manager) Get(ref string) (Container, error) {
	return m.refCall(ref, func(r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_get(m.ptr, r, c, e)
	})
}

// WaitReady waits until the guest's SSH server answers.
func (m *Manager) WaitReady(ref string, timeout time.Duration) (Container, error) {
	return m.refCall(ref, func(r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_wait_ready(m.ptr, r, C.uint64_t(timeout.Milliseconds()), c, e)
	})
}

// Stop stops a running container, giving it timeout to power off.
func (m *Manager) Stop(ref string, timeout time.Duration) (Container, error) {
	return m.refCall(ref, func(r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_stop(m.ptr, r, C.uint64_t(timeout.Milliseconds()), c, e)
	})
}

// Remove deletes a container (force stops a running one first).
func (m *Manager) Remove(ref string, force bool) (Container, error) {
	return m.refCall(ref, func(r *C.char, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_remove(m.ptr, r, C.bool(force), c, e)
	})
}

// List returns every known container.
func (m *Manager) List() ([]Container, error) {
	var l *C.vmc_container_list_t
	var e *C.vmc_error_t
	code := C.vmc_manager_list(m.ptr, &l, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	defer C.vmc_container_list_free(l)
	out := []Container{}
	for i := C.size_t(0); i < C.vmc_container_list_len(l); i++ {
		out = append(out, copyContainer(C.vmc_container_list_get(l, i)))
	}
	return out, nil
}

// ExecResult is a finished command.
type ExecResult struct {
	ExitCode       int
	Stdout, Stderr string
}

// Exec runs argv in the guest.
func (m *Manager) Exec(ref string, argv ...string) (ExecResult, error) {
	r := cstr(ref)
	defer C.free(unsafe.Pointer(r))
	// argv as a NULL-terminated array in C memory: the library reads it
	// only during the call, and every element is freed below.
	n := len(argv)
	arr := (**C.char)(C.malloc(C.size_t(n+1) * C.size_t(unsafe.Sizeof(uintptr(0)))))
	defer C.free(unsafe.Pointer(arr))
	items := unsafe.Slice(arr, n+1)
	for i, a := range argv {
		items[i] = cstr(a)
	}
	items[n] = nil
	defer func() {
		for i := 0; i < n; i++ {
			C.free(unsafe.Pointer(items[i]))
		}
	}()
	var res *C.vmc_exec_result_t
	var e *C.vmc_error_t
	code := C.vmc_manager_exec(m.ptr, r, arr, C.size_t(n), &res, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return ExecResult{}, err
	}
	defer C.vmc_exec_result_free(res)
	var outLen, errLen C.size_t
	out := C.vmc_exec_result_stdout(res, &outLen)
	errOut := C.vmc_exec_result_stderr(res, &errLen)
	return ExecResult{
		ExitCode: int(C.vmc_exec_result_exit_code(res)),
		Stdout:   C.GoStringN(out, C.int(outLen)),
		Stderr:   C.GoStringN(errOut, C.int(errLen)),
	}, nil
}

// Logs returns the whole serial log.
func (m *Manager) Logs(ref string) (string, error) {
	r := cstr(ref)
	defer C.free(unsafe.Pointer(r))
	var p *C.char
	var n C.size_t
	var e *C.vmc_error_t
	code := C.vmc_manager_logs(m.ptr, r, &p, &n, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return "", err
	}
	return takeString(p, n), nil
}

// FollowLogs calls fn with each log line, on this goroutine's thread, until
// fn returns false or the container stops.
func (m *Manager) FollowLogs(ref string, fn func(line string) bool) error {
	r := cstr(ref)
	defer C.free(unsafe.Pointer(r))
	h := cgo.NewHandle(fn)
	defer h.Delete()
	var e *C.vmc_error_t
	code := C.vmc_go_logs_follow(m.ptr, r, C.uintptr_t(h), &e)
	runtime.KeepAlive(m)
	return check(code, e)
}

// Follower is a pull-style log stream. Close it when done.
type Follower struct {
	ptr *C.vmc_log_follower_t
}

// Follow opens a Follower on a container's log.
func (m *Manager) Follow(ref string) (*Follower, error) {
	r := cstr(ref)
	defer C.free(unsafe.Pointer(r))
	var f *C.vmc_log_follower_t
	var e *C.vmc_error_t
	code := C.vmc_manager_logs_follower(m.ptr, r, &f, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	return &Follower{ptr: f}, nil
}

// Next returns the next line; ok is false at the end of the stream. With
// no line within timeout it fails with ErrTimeout.
func (f *Follower) Next(timeout time.Duration) (line string, ok bool, err error) {
	var p *C.char
	var e *C.vmc_error_t
	code := C.vmc_log_follow_next_timeout(f.ptr, C.uint64_t(timeout.Milliseconds()), &p, &e)
	if err := check(code, e); err != nil {
		return "", false, err
	}
	if p == nil {
		return "", false, nil
	}
	defer C.vmc_string_free(p)
	return C.GoString(p), true, nil
}

// Close frees the follower.
func (f *Follower) Close() {
	C.vmc_log_follow_free(f.ptr)
	f.ptr = nil
}

// GenerateID returns a new container ID.
func GenerateID() (string, error) {
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_generate_id(&p, &e), e); err != nil {
		return "", err
	}
	return takeString(p, 8), nil
}

// DetectImageFormat returns "iso", "qcow2", ..., or "unknown".
func DetectImageFormat(path string) (string, error) {
	p := cstr(path)
	defer C.free(unsafe.Pointer(p))
	var f C.vmc_image_format_t
	var e *C.vmc_error_t
	if err := check(C.vmc_detect_image_format(p, &f, &e), e); err != nil {
		return "", err
	}
	return C.GoString(C.vmc_image_format_name(C.int(f))), nil
}

// ApplyVariables substitutes ${VAR} and ${VAR:-default} in content.
func ApplyVariables(content string, vars map[string]string) (string, error) {
	c := cstr(content)
	defer C.free(unsafe.Pointer(c))
	n := len(vars)
	size := C.size_t(n+1) * C.size_t(unsafe.Sizeof(uintptr(0)))
	names := (**C.char)(C.malloc(size))
	values := (**C.char)(C.malloc(size))
	defer C.free(unsafe.Pointer(names))
	defer C.free(unsafe.Pointer(values))
	ns, vs := unsafe.Slice(names, n+1), unsafe.Slice(values, n+1)
	i := 0
	for k, v := range vars {
		ns[i], vs[i] = cstr(k), cstr(v)
		i++
	}
	defer func() {
		for j := 0; j < n; j++ {
			C.free(unsafe.Pointer(ns[j]))
			C.free(unsafe.Pointer(vs[j]))
		}
	}()
	var out *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_apply_variables(c, names, values, C.size_t(n), &out, &e), e); err != nil {
		return "", err
	}
	defer C.vmc_string_free(out)
	return C.GoString(out), nil
}
