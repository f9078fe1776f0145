package vmcontainer

/*
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>

extern void vmcGoProgress(void *user_data, uint64_t downloaded, int64_t total);

// The progress handle is a cgo.Handle (an integer, 0 for none), made a
// pointer here on the C side, as in cgo.go.
static vmc_error_code_t vmc_go_push(const vmc_manager_t *m, const char *image, const char *ref,
		const vmc_push_options_t *opts, uintptr_t handle, char **json, vmc_error_t **err) {
	return vmc_manager_push(m, image, ref, opts, handle ? (vmc_progress_fn)vmcGoProgress : NULL,
		(void *)handle, NULL, json, err);
}

static vmc_error_code_t vmc_go_pull(const vmc_manager_t *m, const char *ref,
		const vmc_pull_options_t *opts, uintptr_t handle, char **json, vmc_error_t **err) {
	return vmc_manager_pull(m, ref, opts, handle ? (vmc_progress_fn)vmcGoProgress : NULL,
		(void *)handle, NULL, json, err);
}
*/
import "C"

import (
	"context"
	"encoding/json"
	"runtime"
	"runtime/cgo"
	"time"
)

// PushOptions says how Push sends an image. The zero value pushes a
// vmcontainer VM image, over HTTPS unless the registry is on loopback.
type PushOptions struct {
	// ContainerDisk pushes a KubeVirt containerDisk (an OCI image whose
	// layer holds the disk under /disk/; a vmdk is converted to qcow2)
	// instead of a vmcontainer VM image. ExportKubeVirt then finds it.
	ContainerDisk bool
	// PlainHTTP allows plain HTTP to a registry that is not on loopback.
	PlainHTTP bool
	// Progress (may be nil) receives the bytes sent and the total, on the
	// goroutine that called Push.
	Progress Progress
}

// PushResult says what Push wrote.
type PushResult struct {
	// Reference is the reference pushed to, in canonical form.
	Reference string `json:"reference"`
	// Digest is the manifest's "sha256:<hex>"; REPOSITORY@DIGEST names
	// exactly what was pushed.
	Digest string `json:"digest"`
	// Format is the image's format ("iso", "qcow2", "vmdk", "raw",
	// "kernel+initrd").
	Format string `json:"format"`
	// Kind is "vmcontainer" (a VM image artifact) or "containerdisk".
	Kind string `json:"kind"`
	// Size is the bytes uploaded (all layers).
	Size uint64 `json:"size"`
}

// PullOptions says how Pull fetches an image. The zero value uses HTTPS
// unless the registry is on loopback.
type PullOptions struct {
	// PlainHTTP allows plain HTTP to a registry that is not on loopback.
	PlainHTTP bool
	// Progress (may be nil) receives the bytes downloaded and the total,
	// on the goroutine that called Pull.
	Progress Progress
}

// PulledImage is an image in the home's store of pulled images.
type PulledImage struct {
	// Reference is the reference it was pulled by, in canonical form.
	Reference string `json:"reference"`
	// Digest is its manifest's "sha256:<hex>".
	Digest string `json:"digest"`
	// Format is its format ("iso", "qcow2", "vmdk", "raw", "kernel+initrd").
	Format string `json:"format"`
	// Path is what Run boots: the disk or ISO, or NAME-kernel.
	Path string `json:"path"`
	// Size is its total size in bytes.
	Size uint64 `json:"size"`
	// Pulled is when it was last pulled.
	Pulled time.Time `json:"pulled"`
	// Downloaded is the bytes this pull transferred (0 when everything was
	// present, and for the entries of PulledImages).
	Downloaded uint64 `json:"downloaded"`
	// AlreadyPresent is true when the content was in the store already
	// (always for the entries of PulledImages).
	AlreadyPresent bool `json:"already_present"`
}

// ExportOptions chooses what ExportKubeVirt's VirtualMachine boots.
type ExportOptions struct {
	// ImageRef is the containerDisk (REGISTRY/REPOSITORY:TAG); empty: the
	// one last pushed with ContainerDisk from the same image file.
	ImageRef string
}

// progressHandle makes progress a handle the C callback can carry (0 for
// nil); release it after the call.
func progressHandle(progress Progress) (C.uintptr_t, func()) {
	if progress == nil {
		return 0, func() {}
	}
	h := cgo.NewHandle(func(done, total int64) { progress(done, total) })
	return C.uintptr_t(h), h.Delete
}

// decodeResult parses the JSON a registry call returned into v.
func decodeResult(what string, p *C.char, v any) error {
	if err := json.Unmarshal([]byte(takeString(p)), v); err != nil {
		return &Error{Kind: KindInternal, Code: int(C.VMC_ERROR_INTERNAL), Message: "decoding " + what + " result: " + err.Error()}
	}
	return nil
}

// Push sends the image file image (.iso, .qcow2, .vmdk, .raw/.img, or a
// LinuxKit NAME-kernel with its initrd and cmdline) to ref
// (REGISTRY/REPOSITORY[:TAG]) as an OCI artifact, or as a KubeVirt
// containerDisk (opts may be nil). Credentials come from REGISTRY_AUTH or
// Docker's config file. The manifest is written last: a failed push never
// leaves the tag pointing at missing blobs. A bad reference or image is
// ErrInvalidInput; a registry that is down or refuses access is
// ErrDownload. Cancelling ctx stops the upload.
func (m *Manager) Push(ctx context.Context, image, ref string, opts *PushOptions) (*PushResult, error) {
	if opts == nil {
		opts = &PushOptions{}
	}
	ci, cr := cString(image), cString(ref)
	defer free(ci)
	defer free(cr)
	o := C.vmc_push_options_new()
	if o == nil {
		return nil, &Error{Kind: KindInternal, Code: int(C.VMC_ERROR_INTERNAL), Message: "out of memory"}
	}
	defer C.vmc_push_options_free(o)
	var e *C.vmc_error_t
	if err := check(C.vmc_push_options_set_containerdisk(o, C.bool(opts.ContainerDisk), &e), e); err != nil {
		return nil, err
	}
	if err := check(C.vmc_push_options_set_plain_http(o, C.bool(opts.PlainHTTP), &e), e); err != nil {
		return nil, err
	}
	h, release := progressHandle(opts.Progress)
	defer release()
	var p *C.char
	err := m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_go_push(mp, ci, cr, o, h, &p, &e), e)
	})
	if err != nil {
		return nil, err
	}
	var r PushResult
	if err := decodeResult("push", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Pull fetches ref (REGISTRY/REPOSITORY[:TAG] or ...@sha256:DIGEST) into
// the home's image store (opts may be nil), verifying every digest: what
// is there already is not downloaded again, an interrupted pull resumes,
// and a digest mismatch installs nothing (ErrChecksum). Run takes the
// reference, or the result's Path. A missing tag or repository is
// ErrDownload; something that is not a VM image is ErrInvalidInput.
func (m *Manager) Pull(ctx context.Context, ref string, opts *PullOptions) (*PulledImage, error) {
	if opts == nil {
		opts = &PullOptions{}
	}
	cr := cString(ref)
	defer free(cr)
	o := C.vmc_pull_options_new()
	if o == nil {
		return nil, &Error{Kind: KindInternal, Code: int(C.VMC_ERROR_INTERNAL), Message: "out of memory"}
	}
	defer C.vmc_pull_options_free(o)
	var e *C.vmc_error_t
	if err := check(C.vmc_pull_options_set_plain_http(o, C.bool(opts.PlainHTTP), &e), e); err != nil {
		return nil, err
	}
	h, release := progressHandle(opts.Progress)
	defer release()
	var p *C.char
	err := m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_go_pull(mp, cr, o, h, &p, &e), e)
	})
	if err != nil {
		return nil, err
	}
	var r PulledImage
	if err := decodeResult("pull", p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// PulledImages returns every image pulled into the home's store.
func (m *Manager) PulledImages() ([]PulledImage, error) {
	var p *C.char
	var e *C.vmc_error_t
	code := C.vmc_manager_pulled_images(m.ptr, &p, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	var all []PulledImage
	if err := decodeResult("pulled images", p, &all); err != nil {
		return nil, err
	}
	for i := range all {
		all[i].AlreadyPresent = true
	}
	return all, nil
}

// ExportKubeVirt returns a KubeVirt VirtualMachine (kubevirt.io/v1), and a
// Service for the port mappings, as multi-document YAML for the container
// target (ID, prefix or name) or, when no container has that name, the
// image target (a file, or a pulled reference). opts may be nil. Without
// a containerDisk to boot (opts.ImageRef, or one pushed with
// ContainerDisk from the same image) it fails with ErrInvalidInput,
// saying how to make one; nothing named target is ErrNotFound.
func (m *Manager) ExportKubeVirt(ctx context.Context, target string, opts *ExportOptions) (string, error) {
	if opts == nil {
		opts = &ExportOptions{}
	}
	ct, ci := cString(target), optCString(opts.ImageRef)
	defer free(ct)
	defer free(ci)
	var p *C.char
	err := m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_manager_export_kubevirt(mp, ct, ci, &p, &e), e)
	})
	if err != nil {
		return "", err
	}
	return takeString(p), nil
}
