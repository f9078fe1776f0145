package vmcontainer

/*
#cgo pkg-config: vmcontainer
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>

// Callbacks exported by callbacks.go. Their user_data is a cgo.Handle (an
// integer), never a Go pointer; these wrappers make the integer a pointer
// on the C side, where that is allowed.
extern void vmcGoOutput(void *user_data, uint8_t *data, size_t len);
extern void vmcGoProgress(void *user_data, uint64_t downloaded, int64_t total);

vmc_error_code_t vmc_go_run_attached(const vmc_manager_t *m, const char *image,
		const vmc_run_options_t *opts, uintptr_t handle, vmc_container_t **out, vmc_error_t **err) {
	return vmc_manager_run_attached(m, image, opts, (vmc_output_fn)vmcGoOutput, (void *)handle, out, err);
}

vmc_error_code_t vmc_go_run_template_attached(const vmc_manager_t *m, const char *name,
		const char *const *vars, size_t count, const vmc_run_options_t *opts, uintptr_t handle,
		vmc_container_t **out, vmc_error_t **err) {
	return vmc_manager_run_template_attached(m, name, vars, count, opts,
		(vmc_output_fn)vmcGoOutput, (void *)handle, out, err);
}

vmc_error_code_t vmc_go_run_snapshot_attached(const vmc_manager_t *m, const char *name,
		const vmc_run_options_t *opts, uintptr_t handle, vmc_container_t **out, vmc_error_t **err) {
	return vmc_manager_run_snapshot_attached(m, name, opts, (vmc_output_fn)vmcGoOutput, (void *)handle, out, err);
}

vmc_error_code_t vmc_go_install(const vmc_devenv_t *d, uintptr_t handle,
		vmc_devenv_install_report_t **report, vmc_error_t **err) {
	return vmc_devenv_install(d, handle ? (vmc_progress_fn)vmcGoProgress : NULL, (void *)handle, report, err);
}

vmc_error_code_t vmc_go_update(const vmc_devenv_t *d, uintptr_t handle,
		vmc_devenv_install_report_t **report, vmc_error_t **err) {
	return vmc_devenv_update(d, handle ? (vmc_progress_fn)vmcGoProgress : NULL, (void *)handle, report, err);
}
*/
import "C"

import (
	"context"
	"sync"
	"unsafe"
)

// Version is the version of the loaded libvmcontainer ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.vmc_version()) }

// HeaderVersion is the version of the vmcontainer.h this package was
// compiled against; it differs from Version when the loaded library is not
// the one the program was built with.
const HeaderVersion = C.VMC_VERSION

// goStr copies a borrowed C string ("" for NULL).
func goStr(p *C.char) string {
	if p == nil {
		return ""
	}
	return C.GoString(p)
}

// goStrN copies a borrowed C string of n bytes ("" for NULL).
func goStrN(p *C.char, n C.size_t) string {
	if p == nil || n == 0 {
		return ""
	}
	return C.GoStringN(p, C.int(n))
}

// takeString copies a string the library handed over, and frees it.
func takeString(p *C.char) string {
	if p == nil {
		return ""
	}
	defer C.vmc_string_free(p)
	return C.GoString(p)
}

// cString makes a C copy of s; release it with free.
func cString(s string) *C.char { return C.CString(s) }

// optCString is cString, or NULL for "".
func optCString(s string) *C.char {
	if s == "" {
		return nil
	}
	return C.CString(s)
}

func free(p *C.char) { C.free(unsafe.Pointer(p)) }

// cStrings is a C array of C copies of ss; release it with the function
// returned. An empty ss gives NULL.
func cStrings(ss []string) (**C.char, func()) {
	if len(ss) == 0 {
		return nil, func() {}
	}
	size := C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))
	arr := (**C.char)(C.malloc(size))
	items := unsafe.Slice(arr, len(ss))
	for i, s := range ss {
		items[i] = C.CString(s)
	}
	return arr, func() {
		for _, p := range items {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(arr))
	}
}

// token is a vmc_cancel_t that is cancelled when ctx is done. Release it
// with release once the call that uses it has returned.
type token struct {
	mu   sync.Mutex
	ptr  *C.vmc_cancel_t
	done chan struct{}
}

func newToken(ctx context.Context) *token {
	t := &token{ptr: C.vmc_cancel_new(), done: make(chan struct{})}
	if ctx.Done() != nil {
		go func() {
			select {
			case <-ctx.Done():
				t.cancel()
			case <-t.done:
			}
		}()
	}
	return t
}

func (t *token) cancel() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ptr != nil {
		C.vmc_cancel_cancel(t.ptr)
	}
}

func (t *token) release() {
	close(t.done)
	t.mu.Lock()
	defer t.mu.Unlock()
	C.vmc_cancel_free(t.ptr)
	t.ptr = nil
}

// contextError is ctx.Err() when err is the library's report of a
// cancellation that ctx caused, else err.
func contextError(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && isKind(err, KindCancelled) {
		return ctx.Err()
	}
	return err
}
