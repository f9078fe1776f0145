package vmcontainer

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// A record written by a newer version (a status this one does not know)
// with one mapping that listens beyond loopback reads the same through
// List, Get and Inspect: StatusUnknown with the text kept, and each
// port's own listen address.
func TestRecordFromANewerVersion(t *testing.T) {
	home := t.TempDir()
	state := `{"containers": {"0a0a0a0a": {"id": "0a0a0a0a", "name": "future",
		"image": "/i.iso", "status": "hibernating", "pid": 0,
		"started_at": "2025-01-01T00:00:00Z", "ports": {"8080": 80, "8443": 443},
		"bind_addresses": {"8443": "0.0.0.0"}, "snapshot": "warm"}}}`
	if err := os.WriteFile(filepath.Join(home, "containers.json"), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(&ManagerOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
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
