package vmcontainer

/*
#include <stdlib.h>
#include <vmcontainer.h>
*/
import "C"

import (
	"context"
)

// Hypervisor is a hypervisor backend ("qemu" or "hyperkit"). It holds no
// C resources: each method looks the hypervisor up again.
type Hypervisor struct {
	name string
}

// take copies a hypervisor handle's name and frees the handle.
func take(ptr *C.vmc_hypervisor_t) *Hypervisor {
	defer C.vmc_hypervisor_free(ptr)
	return &Hypervisor{name: goStr(C.vmc_hypervisor_name(ptr))}
}

// DetectHypervisor returns the best hypervisor installed here (Hyperkit on
// macOS when present, else QEMU); ErrHypervisorUnavailable names what to
// install.
func DetectHypervisor() (*Hypervisor, error) {
	var ptr *C.vmc_hypervisor_t
	var e *C.vmc_error_t
	if err := check(C.vmc_detect_hypervisor(&ptr, &e), e); err != nil {
		return nil, err
	}
	return take(ptr), nil
}

// GetHypervisor returns the hypervisor called name ("qemu" or "hyperkit",
// any case): ErrInvalidInput for an unknown name,
// ErrHypervisorUnavailable when it is not installed.
func GetHypervisor(name string) (*Hypervisor, error) {
	ptr, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return take(ptr), nil
}

func lookup(name string) (*C.vmc_hypervisor_t, error) {
	n := cString(name)
	defer free(n)
	var ptr *C.vmc_hypervisor_t
	var e *C.vmc_error_t
	if err := check(C.vmc_get_hypervisor(n, &ptr, &e), e); err != nil {
		return nil, err
	}
	return ptr, nil
}

// Name is "qemu" or "hyperkit".
func (h *Hypervisor) Name() string { return h.name }

// String is the name.
func (h *Hypervisor) String() string { return h.name }

// Available reports whether it can run on this host.
func (h *Hypervisor) Available() bool {
	ptr, err := lookup(h.name)
	if err != nil {
		return false
	}
	defer C.vmc_hypervisor_free(ptr)
	return bool(C.vmc_hypervisor_available(ptr))
}

// Accel returns the accelerator VMs started now would use ("kvm", "hvf" or
// "tcg") and why it was chosen. The first call may probe the host for a
// few seconds; ctx is checked before it starts.
func (h *Hypervisor) Accel(ctx context.Context) (accel, reason string, err error) {
	if err := ctx.Err(); err != nil {
		return "", "", err
	}
	ptr, err := lookup(h.name)
	if err != nil {
		return "", "", err
	}
	defer C.vmc_hypervisor_free(ptr)
	var a, r *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_hypervisor_accel(ptr, &a, &r, &e), e); err != nil {
		return "", "", err
	}
	return takeString(a), takeString(r), nil
}

// DetectImageFormat returns the format of the image at path, by extension
// and, when that is missing or lies, by content (FormatUnknown when it is
// not bootable).
func DetectImageFormat(path string) (ImageFormat, error) {
	p := cString(path)
	defer free(p)
	var f C.vmc_image_format_t
	var e *C.vmc_error_t
	if err := check(C.vmc_detect_image_format(p, &f, &e), e); err != nil {
		return FormatUnknown, err
	}
	return ImageFormat(goStr(C.vmc_image_format_name(C.int(f)))), nil
}

// GenerateID returns a new container ID: 8 lowercase hex characters from
// the OS's random number generator.
func GenerateID() (string, error) {
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_generate_id(&p, &e), e); err != nil {
		return "", err
	}
	return takeString(p), nil
}
