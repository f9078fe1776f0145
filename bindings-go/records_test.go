package vmcontainer

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A record written by a newer version (a status this one does not know)
// with one mapping that listens beyond loopback reads the same through
// List, Get and Inspect: StatusUnknown with the text kept, and each
// port's own listen address.
func TestRecordFromANewerVersion(t *testing.T) {
	state := `{"containers": {"0a0a0a0a": {"id": "0a0a0a0a", "name": "future",
		"image": "/i.iso", "status": "hibernating", "pid": 0,
		"started_at": "2025-01-01T00:00:00Z", "ports": {"8080": 80, "8443": 443},
		"bind_addresses": {"8443": "0.0.0.0"}, "snapshot": "warm"}}}`
	m, home := managerOver(t, state)
	loop, wide := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("0.0.0.0")
	check := func(how string, c *Container) {
		t.Helper()
		if c.Status != StatusUnknown || c.StatusText != "hibernating" || c.Snapshot != "warm" ||
			len(c.BindAddresses) != 2 || c.BindAddresses[8080] != loop || c.BindAddresses[8443] != wide ||
			c.Ports[8443] != 443 {
			t.Errorf("%s: %+v", how, c)
		}
	}
	all, err := m.List()
	if err != nil || len(all) != 1 {
		t.Fatalf("List = %+v, %v", all, err)
	}
	check("List", &all[0])
	c, err := m.Get("future")
	if err != nil {
		t.Fatal(err)
	}
	check("Get", c)
	d, err := m.Inspect("0a0a")
	if err != nil {
		t.Fatal(err)
	}
	check("Inspect", &d.Container)
	if len(d.Forwards) != 2 || d.Forwards[1] != (Forward{Bind: wide, Host: 8443, Guest: 443}) || len(d.Transports) != 0 {
		t.Errorf("Inspect's forwards and transports: %+v %+v", d.Forwards, d.Transports)
	}
	// Not running: nothing to wait for, exec in or copy to.
	ctx := context.Background()
	if _, _, err := m.WaitReadyVia(ctx, "future", TransportSSH); !errors.Is(err, ErrNotRunning) {
		t.Errorf("WaitReadyVia(not running) = %v", err)
	}
	if err := m.CopyTo(ctx, "future", home, "/tmp/", nil); !errors.Is(err, ErrNotRunning) {
		t.Errorf("CopyTo(not running) = %v", err)
	}
	if _, _, err := m.WaitReadyVia(ctx, "future", "vsock"); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("WaitReadyVia(transport vsock) = %v", err)
	}
}

// List reads every container's strings from one buffer shared by the
// whole list: each container's fields must come out as Get reads them
// alone, with empty, absent and non-ASCII fields between them.
func TestListMatchesGet(t *testing.T) {
	state := `{"containers": {
		"0b0b0b0b": {"id": "0b0b0b0b", "name": "één", "image": "/imágenes/a.iso", "status": "stopped",
			"pid": 0, "started_at": "2025-01-01T00:00:00Z", "ports": {}, "ssh_key": "/k/ключ",
			"exit_reason": "guest powered off"},
		"0c0c0c0c": {"id": "0c0c0c0c", "name": "", "image": "/b.qcow2", "status": "error", "pid": 0,
			"started_at": "2025-01-02T00:00:00Z", "ports": {"2222": 22}, "hypervisor": "qemu", "accel": "tcg"},
		"0d0d0d0d": {"id": "0d0d0d0d", "name": "三", "image": "/c.raw", "status": "stopped", "pid": 0,
			"started_at": "2025-01-03T00:00:00Z", "ports": {"80": 8080, "443": 8443}, "snapshot": "s1"}}}`
	m, _ := managerOver(t, state)
	all, err := m.List()
	if err != nil || len(all) != 3 {
		t.Fatalf("List = %+v, %v", all, err)
	}
	seen := map[string]bool{}
	for i := range all {
		one, err := m.Get(all[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(&all[i], one) {
			t.Errorf("List()[%d] = %+v\nGet(%s) = %+v", i, all[i], all[i].ID, one)
		}
		seen[all[i].ID+"/"+all[i].Name+"/"+all[i].Image+"/"+all[i].SSHKey+"/"+all[i].Snapshot] = true
	}
	for _, want := range []string{"0b0b0b0b/één//imágenes/a.iso//k/ключ/", "0c0c0c0c///b.qcow2//", "0d0d0d0d/三//c.raw//s1"} {
		if !seen[want] {
			t.Errorf("no container %q in %v", want, seen)
		}
	}
}

// managerOver opens a manager on a new home whose state file is state.
func managerOver(t *testing.T, state string) (*Manager, string) {
	t.Helper()
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "containers.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(&ManagerOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, home
}
