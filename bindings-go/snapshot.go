package vmcontainer

/*
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>

extern vmc_error_code_t vmc_go_run_snapshot_attached(const vmc_manager_t *m, const char *name,
	const vmc_run_options_t *opts, uintptr_t handle, vmc_container_t **out, vmc_error_t **err);
*/
import "C"

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"time"
)

// Snapshot is a VM's memory, devices and disk saved at one instant under
// the home's snapshots/ directory, from which RunSnapshot starts new
// containers: a copy, as it was when read.
type Snapshot struct {
	// Name is unique in the home.
	Name string `json:"name"`
	// CreatedAt is when it was taken.
	CreatedAt time.Time `json:"created_at"`
	// SourceID is the ID of the container it was taken from.
	SourceID string `json:"source_id"`
	// SourceName is that container's name at the time.
	SourceName string `json:"source_name"`
	// Image is the image the source booted (still needed to resume).
	Image string `json:"image"`
	// Format is that image's format.
	Format ImageFormat `json:"format"`
	// MemoryMB is the memory in MiB of every VM resumed from it.
	MemoryMB uint32 `json:"memory"`
	// CPUs is the number of virtual CPUs of every VM resumed from it.
	CPUs uint32 `json:"cpus"`
	// Disk says whether it holds a disk (disk images; ISO and kernel
	// guests have none).
	Disk bool `json:"disk"`
	// Parent is the snapshot its disk is layered on, when the source was
	// itself resumed from one ("" otherwise).
	Parent string `json:"parent"`
	// Volumes maps the shared host directories to guest paths; a resumed
	// VM gets the same.
	Volumes map[string]string `json:"volumes"`
	// QEMUVersion is the QEMU version that saved it; resuming needs the
	// same.
	QEMUVersion string `json:"qemu_version"`
	// Machine is the QEMU machine type it was saved from.
	Machine string `json:"machine"`
	// Accel is the accelerator it ran under ("tcg", "kvm", "hvf").
	Accel string `json:"accel"`
	// SSHKey is the private key Exec used for the source, the default for
	// containers resumed from it ("" for none).
	SSHKey string `json:"ssh_key"`
	// Devices are the guest-visible QEMU options it needs, in order.
	Devices []string `json:"devices"`
	// Path is its directory.
	Path string `json:"path"`
	// Size is the number of bytes its files take on disk.
	Size uint64 `json:"size"`
}

// copySnapshot copies a borrowed vmc_snapshot_t (through its JSON, which
// holds every field).
func copySnapshot(s *C.vmc_snapshot_t) (Snapshot, error) {
	var p *C.char
	var e *C.vmc_error_t
	if err := check(C.vmc_snapshot_to_json(s, &p, &e), e); err != nil {
		return Snapshot{}, err
	}
	var out Snapshot
	if err := json.Unmarshal([]byte(takeString(p)), &out); err != nil {
		return Snapshot{}, &Error{Kind: KindInternal, Code: int(C.VMC_ERROR_INTERNAL), Message: "decoding a snapshot: " + err.Error()}
	}
	return out, nil
}

// takeSnapshot copies a snapshot the library handed over, and frees it.
func takeSnapshot(s *C.vmc_snapshot_t) (*Snapshot, error) {
	defer C.vmc_snapshot_free(s)
	out, err := copySnapshot(s)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// SnapshotCreate snapshots running container ref as name (letters, digits
// and _.-, starting with a letter or digit): its memory, devices and disk
// at one instant. The container keeps running; it is paused only while
// its state is written. A taken name or a bad one is ErrInvalidInput, a
// stopped container ErrNotRunning; a failure (a full disk, say) leaves no
// snapshot behind and the container running. ctx is checked before it
// begins; a snapshot is not cut short once started.
func (m *Manager) SnapshotCreate(ctx context.Context, ref, name string) (*Snapshot, error) {
	r, n := cString(ref), cString(name)
	defer free(r)
	defer free(n)
	var s *C.vmc_snapshot_t
	err := m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_manager_snapshot_create(mp, r, n, &s, &e), e)
	})
	if err != nil {
		return nil, err
	}
	return takeSnapshot(s)
}

// SnapshotList returns every snapshot, oldest first.
func (m *Manager) SnapshotList() ([]Snapshot, error) {
	var list *C.vmc_snapshot_list_t
	var e *C.vmc_error_t
	code := C.vmc_manager_snapshot_list(m.ptr, &list, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	defer C.vmc_snapshot_list_free(list)
	out := make([]Snapshot, int(C.vmc_snapshot_list_len(list)))
	for i := range out {
		s, err := copySnapshot(C.vmc_snapshot_list_get(list, C.size_t(i)))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

// SnapshotGet returns snapshot name (ErrNotFound when there is none).
func (m *Manager) SnapshotGet(name string) (*Snapshot, error) {
	n := cString(name)
	defer free(n)
	var s *C.vmc_snapshot_t
	var e *C.vmc_error_t
	code := C.vmc_manager_snapshot_get(m.ptr, n, &s, &e)
	runtime.KeepAlive(m)
	if err := check(code, e); err != nil {
		return nil, err
	}
	return takeSnapshot(s)
}

// SnapshotRemove deletes snapshot name. It is refused (ErrInvalidInput,
// naming them) while containers created from it exist, running or not, or
// another snapshot's disk is layered on it.
func (m *Manager) SnapshotRemove(name string) error {
	n := cString(name)
	defer free(n)
	var e *C.vmc_error_t
	code := C.vmc_manager_snapshot_remove(m.ptr, n, &e)
	runtime.KeepAlive(m)
	return check(code, e)
}

// RunSnapshot starts a new container that resumes snapshot name: the
// guest goes on from the instant the snapshot was taken, with its memory,
// processes and disk as they were, beside any other container resumed
// from it. opts gives the name, ports, SSH port and key (default: the
// source's); memory, CPUs and volumes are the snapshot's (other values
// are ErrInvalidInput, as is a snapshot this QEMU cannot resume). Detached
// (the default) it returns once the guest runs; with opts.Foreground it
// runs as RunSnapshotAttached with the output discarded.
//
// ctx is checked before the VM starts; starting is not cut short.
func (m *Manager) RunSnapshot(ctx context.Context, name string, opts *RunOptions) (*Container, error) {
	if opts != nil && opts.Foreground {
		return m.RunSnapshotAttached(ctx, name, opts, io.Discard)
	}
	n := cString(name)
	defer free(n)
	return m.start(ctx, opts, true, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_manager_run_snapshot(mp, n, o, c, e)
	})
}

// RunSnapshotAttached is RunSnapshot in the foreground (whatever opts
// says), writing the resumed VM's serial output to output as it arrives
// until the VM exits, as RunAttached does for an image. Cancelling ctx
// stops the VM and returns ctx.Err().
func (m *Manager) RunSnapshotAttached(ctx context.Context, name string, opts *RunOptions, output io.Writer) (*Container, error) {
	n := cString(name)
	defer free(n)
	return m.startAttached(ctx, opts, output, func(mp *C.vmc_manager_t, o *C.vmc_run_options_t, h C.uintptr_t, c **C.vmc_container_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_go_run_snapshot_attached(mp, n, o, h, c, e)
	})
}

// Commit writes container ref's disk (its overlay flattened with every
// layer below it: snapshots, the image) to path, a new standalone qcow2
// image that boots on its own with Run. path must end in .qcow2 and must
// not exist; it appears only when complete. A running container is paused
// while its disk is copied (data still in the guest's page cache is not
// in the image: run sync in the guest first). A container that boots from
// an ISO or a kernel has no disk to commit (ErrInvalidInput). ctx is
// checked before it begins; the copy is not cut short.
func (m *Manager) Commit(ctx context.Context, ref, path string) error {
	r, p := cString(ref), cString(path)
	defer free(r)
	defer free(p)
	return m.do(ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_manager_commit(mp, r, p, &e), e)
	})
}
