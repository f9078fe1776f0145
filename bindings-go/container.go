package vmcontainer

/*
#include <stdlib.h>
#include <vmcontainer.h>
*/
import "C"

import (
	"net/netip"
	"sync"
	"time"
	"unsafe"
)

// Status is a container's lifecycle status, as the state file writes it:
// one of the constants below. A status this version does not know (a
// newer version's, or a hand edit) is StatusUnknown, and
// Container.StatusText has it as written.
type Status string

// Statuses.
const (
	// StatusStarting: the record is written and the hypervisor is being
	// started.
	StatusStarting Status = "starting"
	StatusRunning  Status = "running"
	StatusStopped  Status = "stopped"
	StatusError    Status = "error"
	// StatusKilled is written by go-container after a SIGKILL; read, never
	// produced.
	StatusKilled Status = "killed"
	// StatusUnknown stands for a status this version does not know;
	// Container.StatusText has the text.
	StatusUnknown Status = "unknown"
)

// known reports whether s is one of the statuses this version knows.
func (s Status) known() bool {
	switch s {
	case StatusStarting, StatusRunning, StatusStopped, StatusError, StatusKilled:
		return true
	}
	return false
}

// ImageFormat is the format of a bootable image.
type ImageFormat string

// Image formats.
const (
	FormatISO          ImageFormat = "iso"
	FormatQCOW2        ImageFormat = "qcow2"
	FormatVMDK         ImageFormat = "vmdk"
	FormatRaw          ImageFormat = "raw"
	FormatKernelInitrd ImageFormat = "kernel+initrd"
	FormatUnknown      ImageFormat = "unknown"
)

// Container is a container (a VM) as recorded in the state file: a copy,
// which does not change when the container does.
type Container struct {
	// ID is 8 lowercase hex characters.
	ID string `json:"id"`
	// Name is unique among containers (the ID when none was given).
	Name string `json:"name"`
	// Image is the absolute path of the image it runs.
	Image string `json:"image"`
	// Status is the last known status (reconciled with the process on
	// every read).
	Status Status `json:"status"`
	// StatusText is the status exactly as the state file has it (it
	// differs from Status only for StatusUnknown).
	StatusText string `json:"-"`
	// PID is the hypervisor's process ID.
	PID int `json:"pid"`
	// StartedAt is when the VM was (last) started.
	StartedAt time.Time `json:"started_at"`
	// StoppedAt is when the VM was seen to stop (zero if it has not).
	StoppedAt time.Time `json:"stopped_at"`
	// Ports maps forwarded host ports to guest ports.
	Ports map[uint16]uint16 `json:"ports"`
	// BindAddresses maps each forwarded host port to the address it
	// listens on.
	BindAddresses map[uint16]netip.Addr `json:"-"`
	// MemoryMB is the memory in MiB.
	MemoryMB uint32 `json:"memory"`
	// CPUs is the number of virtual CPUs.
	CPUs uint32 `json:"cpus"`
	// SSHPort is the loopback host port of the guest's SSH server.
	SSHPort uint16 `json:"ssh_port"`
	// SSHKey is the private key Exec uses ("" for ssh's defaults).
	SSHKey string `json:"ssh_key"`
	// Volumes maps shared host directories to guest paths (9p).
	Volumes map[string]string `json:"volumes"`
	// Hypervisor is "qemu" or "hyperkit".
	Hypervisor string `json:"hypervisor"`
	// Accel is the accelerator chosen at start ("kvm", "hvf", "tcg").
	Accel string `json:"accel"`
	// Format is the image's format.
	Format ImageFormat `json:"format"`
	// BindAddress is the address forwarded ports listen on, as recorded
	// before each mapping kept its own (invalid when not recorded); see
	// BindAddresses for each port's.
	BindAddress netip.Addr `json:"bind_address"`
	// ExitCode is the hypervisor's exit code when known (foreground runs).
	ExitCode *int `json:"exit_code"`
	// ExitSignal is the signal that ended the hypervisor, when one did.
	ExitSignal *int `json:"exit_signal"`
	// ExitReason says how the VM ended, when known.
	ExitReason string `json:"exit_reason"`
	// Snapshot is the snapshot the container was resumed from ("" when it
	// booted an image).
	Snapshot string `json:"snapshot"`
}

// fromView sets c to the fields of a snapshot's view v (in place: a list's
// containers are built where they stay), taking its strings
// from strs (see stringArena); volumes, which the view does not carry, are
// added by addVolumes. Everything here comes from the one view (no call
// into the library per field, which would make the library build every
// field's C string for every container of a list).
func fromView(c *Container, v *C.vmc_container_view_t, strs *stringArena) {
	text := strs.next(v.status_text_len)
	status := Status(text)
	if !status.known() {
		status = StatusUnknown
	}
	*c = Container{
		StatusText: text,
		Status:     status,
		ID:         strs.next(v.id_len),
		Name:       strs.next(v.name_len),
		Image:      strs.next(v.image_len),
		Snapshot:   strs.next(v.snapshot_len),
		SSHKey:     strs.next(v.ssh_key_len),
		Hypervisor: strs.next(v.hypervisor_len),
		Accel:      strs.next(v.accel_len),
		ExitReason: strs.next(v.exit_reason_len),
		PID:        int(v.pid),
		StartedAt:  time.Unix(0, int64(v.started_at_unix_nanos)).UTC(),
		MemoryMB:   uint32(v.memory_mb),
		CPUs:       uint32(v.cpus),
		SSHPort:    uint16(v.ssh_port),
		Format:     formatName(v.format),
	}
	if bool(v.has_stopped_at) {
		c.StoppedAt = time.Unix(0, int64(v.stopped_at_unix_nanos)).UTC()
	}
	if bool(v.has_exit_code) {
		code := int(v.exit_code)
		c.ExitCode = &code
	}
	if bool(v.has_exit_signal) {
		sig := int(v.exit_signal)
		c.ExitSignal = &sig
	}
	c.BindAddress, _ = fromAddress(v.bind_family, &v.bind_address)
	if v.port_count > 0 {
		ports := unsafe.Slice(v.ports, int(v.port_count))
		c.Ports = make(map[uint16]uint16, len(ports))
		c.BindAddresses = make(map[uint16]netip.Addr, len(ports))
		for i := range ports {
			p := &ports[i]
			c.Ports[uint16(p.host)] = uint16(p.guest)
			// Absent only if the library wrote a family it does not
			// document: left out rather than guessed.
			if a, ok := fromAddress(p.bind_family, &p.bind_address); ok {
				c.BindAddresses[uint16(p.host)] = a
			}
		}
	}
}

// stringArena holds the strings of a list's views in one allocation (a
// list of 1,000 containers makes 9,000 strings otherwise, and the garbage
// of each List() call sets Go's collector running beside the next call
// into the library): every field is a slice of it. A Container kept alone
// keeps the whole buffer alive, some 60 bytes per container listed.
type stringArena struct {
	all string
	at  int
}

// newStringArena copies the strings of views, in the order fromView takes
// them.
func newStringArena(views []C.vmc_container_view_t) *stringArena {
	total := 0
	for i := range views {
		v := &views[i]
		total += int(v.status_text_len + v.id_len + v.name_len + v.image_len + v.snapshot_len +
			v.ssh_key_len + v.hypervisor_len + v.accel_len + v.exit_reason_len)
	}
	b := make([]byte, 0, total)
	add := func(p *C.char, n C.size_t) {
		if p != nil && n > 0 {
			b = append(b, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))...)
		}
	}
	for i := range views {
		v := &views[i]
		add(v.status_text, v.status_text_len)
		add(v.id, v.id_len)
		add(v.name, v.name_len)
		add(v.image, v.image_len)
		add(v.snapshot, v.snapshot_len)
		add(v.ssh_key, v.ssh_key_len)
		add(v.hypervisor, v.hypervisor_len)
		add(v.accel, v.accel_len)
		add(v.exit_reason, v.exit_reason_len)
	}
	// The buffer is never written again (as strings.Builder does it).
	return &stringArena{all: *(*string)(unsafe.Pointer(&b))}
}

// next is the following n bytes as a string (a NULL field has length 0).
func (a *stringArena) next(n C.size_t) string {
	s := a.all[a.at : a.at+int(n)]
	a.at += int(n)
	return s
}

// addVolumes copies the shared directories of a snapshot with n of them.
func addVolumes(c *Container, snapshot *C.vmc_container_t, n C.size_t) {
	if n == 0 {
		return
	}
	c.Volumes = make(map[string]string, int(n))
	for i := C.size_t(0); i < n; i++ {
		var h, g *C.char
		if C.vmc_container_volume_at(snapshot, i, &h, &g) {
			c.Volumes[goStr(h)] = goStr(g)
		}
	}
}

// fromAddress reads an address as the library's views carry it: family 4
// or 6 and 16 bytes; false for family 0 (none recorded).
func fromAddress(family C.uint8_t, b *[16]C.uint8_t) (netip.Addr, bool) {
	raw := (*[16]byte)(unsafe.Pointer(b))
	switch family {
	case 4:
		return netip.AddrFrom4([4]byte{raw[0], raw[1], raw[2], raw[3]}), true
	case 6:
		return netip.AddrFrom16(*raw), true
	}
	return netip.Addr{}, false
}

// formatNames holds the library's name of each image format value, read
// once per value: formats are a small fixed set, and a list would
// otherwise make one library call per container for it.
var formatNames sync.Map

// formatName is the ImageFormat for the library's format value f.
func formatName(f C.vmc_image_format_t) ImageFormat {
	if name, ok := formatNames.Load(f); ok {
		return name.(ImageFormat)
	}
	name := ImageFormat(goStr(C.vmc_image_format_name(C.int(f))))
	formatNames.Store(f, name)
	return name
}

// copyContainer copies a borrowed snapshot.
func copyContainer(snapshot *C.vmc_container_t) Container {
	var v [1]C.vmc_container_view_t
	C.vmc_container_view(snapshot, &v[0])
	var c Container
	fromView(&c, &v[0], newStringArena(v[:]))
	addVolumes(&c, snapshot, v[0].volume_count)
	return c
}

// takeContainer copies a snapshot the library handed over, and frees it.
func takeContainer(snapshot *C.vmc_container_t) *Container {
	if snapshot == nil {
		return nil
	}
	defer C.vmc_container_free(snapshot)
	c := copyContainer(snapshot)
	return &c
}

// takeList copies a list the library handed over, and frees it: one call
// reads every snapshot's fields.
func takeList(list *C.vmc_container_list_t) []Container {
	defer C.vmc_container_list_free(list)
	n := int(C.vmc_container_list_len(list))
	if n == 0 {
		return []Container{}
	}
	// In C memory: a Go buffer of 1,000 views is 250 kB of garbage per
	// call, to be zeroed and then scanned by the collector.
	size := C.size_t(n) * C.size_t(unsafe.Sizeof(C.vmc_container_view_t{}))
	buf := C.malloc(size)
	if buf == nil {
		panic("vmcontainer: out of memory for the list's views")
	}
	defer C.free(buf)
	views := unsafe.Slice((*C.vmc_container_view_t)(buf), n)
	n = int(C.vmc_container_list_views(list, &views[0], C.size_t(n)))
	views = views[:n]
	strs := newStringArena(views)
	out := make([]Container, n)
	for i := range out {
		fromView(&out[i], &views[i], strs)
		if views[i].volume_count > 0 {
			addVolumes(&out[i], C.vmc_container_list_get(list, C.size_t(i)), views[i].volume_count)
		}
	}
	return out
}
