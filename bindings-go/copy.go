package vmcontainer

/*
#include <vmcontainer.h>
*/
import "C"

import "context"

// CopyOptions says how CopyTo and CopyFrom copy. The zero value keeps
// modes and times, not owners, and reaches the guest over its agent when
// it answers, else SSH.
type CopyOptions struct {
	// Archive keeps owners (uid/gid) too, like `docker cp -a`; copying
	// from the guest keeps them only when this process runs as root.
	Archive bool
	// Transport forces one way to reach the guest ("": TransportAuto).
	Transport Transport
}

// CopyTo copies host path hostPath into running container ref at
// guestPath, with `docker cp` semantics: a file or a directory (its
// contents with "DIR/."); a destination ending in "/" must be an existing
// directory. A missing source or a directory onto a file is
// ErrInvalidInput and a stopped container ErrNotRunning, each naming the
// path. The guest needs sh and tar. nil opts means the defaults. Cancelling ctx
// stops the copy.
func (m *Manager) CopyTo(ctx context.Context, ref, hostPath, guestPath string, opts *CopyOptions) error {
	return m.copy(ctx, ref, hostPath, guestPath, opts, func(mp *C.vmc_manager_t, r, src, dst *C.char, archive C.bool, t C.int, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_copy_to(mp, r, src, dst, archive, t, e)
	})
}

// CopyFrom copies guestPath from running container ref to host path
// hostPath, with the semantics of CopyTo the other way.
func (m *Manager) CopyFrom(ctx context.Context, ref, guestPath, hostPath string, opts *CopyOptions) error {
	return m.copy(ctx, ref, guestPath, hostPath, opts, func(mp *C.vmc_manager_t, r, src, dst *C.char, archive C.bool, t C.int, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_copy_from(mp, r, src, dst, archive, t, e)
	})
}

// copy runs one of the copy calls with src and dst in the call's order.
func (m *Manager) copy(ctx context.Context, ref, src, dst string, opts *CopyOptions,
	call func(*C.vmc_manager_t, *C.char, *C.char, *C.char, C.bool, C.int, **C.vmc_error_t) C.vmc_error_code_t) error {
	if opts == nil {
		opts = &CopyOptions{}
	}
	t, err := opts.Transport.code()
	if err != nil {
		return err
	}
	r, s, d := cString(ref), cString(src), cString(dst)
	defer free(r)
	defer free(s)
	defer free(d)
	return m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(call(mp, r, s, d, C.bool(opts.Archive), t, &e), e)
	})
}
