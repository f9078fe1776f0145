package vmcontainer

/*
#include <vmcontainer.h>
*/
import "C"

import (
	"net/netip"
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

// fromView copies a snapshot's fields: those of its view v, and the rest
// through the snapshot itself.
func fromView(v *C.vmc_container_view_t, snapshot *C.vmc_container_t) Container {
	c := Container{
		ID:         goStrN(v.id, v.id_len),
		Name:       goStrN(v.name, v.name_len),
		Image:      goStrN(v.image, v.image_len),
		Status:     Status(goStr(v.status)),
		StatusText: goStr(C.vmc_container_status_name(snapshot)),
		Snapshot:   goStr(C.vmc_container_snapshot(snapshot)),
		PID:        int(v.pid),
		StartedAt:  time.Unix(0, int64(v.started_at_unix_nanos)).UTC(),
		MemoryMB:   uint32(v.memory_mb),
		CPUs:       uint32(v.cpus),
		SSHPort:    uint16(v.ssh_port),
		SSHKey:     goStrN(v.ssh_key, v.ssh_key_len),
		Hypervisor: goStrN(v.hypervisor, v.hypervisor_len),
		Accel:      goStrN(v.accel, v.accel_len),
		Format:     ImageFormat(goStr(C.vmc_image_format_name(C.int(v.format)))),
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
	c.ExitReason = goStrN(v.exit_reason, v.exit_reason_len)
	var addr [16]byte
	copy(addr[:], unsafe.Slice((*byte)(unsafe.Pointer(&v.bind_address[0])), 16))
	switch v.bind_family {
	case 4:
		c.BindAddress = netip.AddrFrom4([4]byte{addr[0], addr[1], addr[2], addr[3]})
	case 6:
		c.BindAddress = netip.AddrFrom16(addr)
	}
	if v.port_count > 0 {
		ports := unsafe.Slice(v.ports, int(v.port_count))
		c.Ports = make(map[uint16]uint16, len(ports))
		c.BindAddresses = make(map[uint16]netip.Addr, len(ports))
		for i, p := range ports {
			c.Ports[uint16(p.host)] = uint16(p.guest)
			// The library writes the address it parsed; one that does not
			// parse back would be a library bug, left out rather than
			// guessed.
			if a, err := netip.ParseAddr(goStr(C.vmc_container_port_bind_address(snapshot, C.size_t(i)))); err == nil {
				c.BindAddresses[uint16(p.host)] = a
			}
		}
	}
	if v.volume_count > 0 {
		c.Volumes = make(map[string]string, int(v.volume_count))
		for i := C.size_t(0); i < v.volume_count; i++ {
			var h, g *C.char
			if C.vmc_container_volume_at(snapshot, i, &h, &g) {
				c.Volumes[goStr(h)] = goStr(g)
			}
		}
	}
	return c
}

// copyContainer copies a borrowed snapshot.
func copyContainer(snapshot *C.vmc_container_t) Container {
	var v C.vmc_container_view_t
	C.vmc_container_view(snapshot, &v)
	return fromView(&v, snapshot)
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
		out[i] = fromView(&views[i], C.vmc_container_list_get(list, C.size_t(i)))
	}
	return out
}
