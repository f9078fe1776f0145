package vmcontainer

/*
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

// fromView copies the fields of a snapshot's view v; volumes, which the
// view does not carry, are added by addVolumes. Everything here comes from
// the one view (no call into the library per field, which would make the
// library build every field's C string for every container of a list).
func fromView(v *C.vmc_container_view_t) Container {
	// The container's strings share one allocation (a list of 1,000 makes
	// 9,000 strings otherwise): each field is a slice of it.
	var a arena
	a.b = make([]byte, 0, int(v.status_text_len+v.id_len+v.name_len+v.image_len+
		v.snapshot_len+v.ssh_key_len+v.hypervisor_len+v.accel_len+v.exit_reason_len))
	spans := [...][2]int{
		a.add(v.status_text, v.status_text_len),
		a.add(v.id, v.id_len),
		a.add(v.name, v.name_len),
		a.add(v.image, v.image_len),
		a.add(v.snapshot, v.snapshot_len),
		a.add(v.ssh_key, v.ssh_key_len),
		a.add(v.hypervisor, v.hypervisor_len),
		a.add(v.accel, v.accel_len),
		a.add(v.exit_reason, v.exit_reason_len),
	}
	all := a.string()
	str := func(i int) string { return all[spans[i][0]:spans[i][1]] }
	text := str(0)
	status := Status(text)
	if !status.known() {
		status = StatusUnknown
	}
	c := Container{
		ID:         str(1),
		Name:       str(2),
		Image:      str(3),
		Status:     status,
		StatusText: text,
		Snapshot:   str(4),
		PID:        int(v.pid),
		StartedAt:  time.Unix(0, int64(v.started_at_unix_nanos)).UTC(),
		MemoryMB:   uint32(v.memory_mb),
		CPUs:       uint32(v.cpus),
		SSHPort:    uint16(v.ssh_port),
		SSHKey:     str(5),
		Hypervisor: str(6),
		Accel:      str(7),
		Format:     formatName(v.format),
		ExitReason: str(8),
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
	return c
}

// arena gathers the strings of one container in one buffer.
type arena struct{ b []byte }

// add copies n bytes at p and returns where they are.
func (a *arena) add(p *C.char, n C.size_t) [2]int {
	start := len(a.b)
	if p != nil && n > 0 {
		a.b = append(a.b, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))...)
	}
	return [2]int{start, len(a.b)}
}

// string is the buffer as a string, without a copy: the buffer is never
// written again (as strings.Builder does it).
func (a *arena) string() string {
	return *(*string)(unsafe.Pointer(&a.b))
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
	var v C.vmc_container_view_t
	C.vmc_container_view(snapshot, &v)
	c := fromView(&v)
	addVolumes(&c, snapshot, v.volume_count)
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
	views := make([]C.vmc_container_view_t, n)
	n = int(C.vmc_container_list_views(list, &views[0], C.size_t(n)))
	out := make([]Container, n)
	for i := range out {
		out[i] = fromView(&views[i])
		if views[i].volume_count > 0 {
			addVolumes(&out[i], C.vmc_container_list_get(list, C.size_t(i)), views[i].volume_count)
		}
	}
	return out
}
