package vmcontainer

// What TestVMLifecycle does with its running guest besides the lifecycle:
// exec with standard input and a transport, readiness per transport, copy
// both ways, and a snapshot with one clone resumed from it. They share
// its VM (the clone is the one more boot) and its leak check.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// execInput checks standard input and the transport choice of ExecWith.
func execInput(ctx context.Context, t *testing.T, m *Manager, id string) {
	t.Helper()
	r, err := m.ExecWith(ctx, id, []string{"sh", "-c", "cat; echo read >&2; exit 5"},
		&ExecOptions{Input: []byte("from go\n")})
	if err != nil || r.ExitCode != 5 || string(r.Stdout) != "from go\n" || string(r.Stderr) != "read\n" {
		t.Fatalf("ExecWith(input) = %+v, %v", r, err)
	}
	// More than a pipe buffer, forced over SSH.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	r, err = m.ExecWith(ctx, id, []string{"wc", "-c"}, &ExecOptions{Input: big, Transport: TransportSSH})
	if err != nil || r.ExitCode != 0 || strings.TrimSpace(string(r.Stdout)) != strconv.Itoa(len(big)) {
		t.Fatalf("ExecWith(%d bytes over SSH) = %+v, %v", len(big), r, err)
	}
	if _, err := m.ExecWith(ctx, id, []string{"true"}, &ExecOptions{Transport: "vsock"}); !errors.Is(err, ErrInvalidInput) ||
		!strings.Contains(err.Error(), "vsock") {
		t.Fatalf("ExecWith(transport vsock) = %v", err)
	}
	if _, err := m.ExecWith(ctx, id, nil, nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("ExecWith(no command) = %v", err)
	}

	_, via, err := m.WaitReadyVia(ctx, id, TransportAuto)
	if err != nil || (via != TransportAgent && via != TransportSSH) {
		t.Fatalf("WaitReadyVia(auto) = %q, %v", via, err)
	}
	c, via, err := m.WaitReadyVia(ctx, id, TransportSSH)
	if err != nil || via != TransportSSH || c.ID != id {
		t.Fatalf("WaitReadyVia(ssh) = %+v, %q, %v", c, via, err)
	}
	d, err := m.Inspect(id)
	if err != nil {
		t.Fatal(err)
	}
	if !containsTransport(d.Transports, TransportSSH) {
		t.Fatalf("Inspect's transports after SSH answered: %v", d.Transports)
	}
}

func containsTransport(list []Transport, want Transport) bool {
	for _, t := range list {
		if t == want {
			return true
		}
	}
	return false
}

// copyBothWays copies a directory tree into the guest and back, and a
// file into an existing directory; the bytes and modes must survive.
func copyBothWays(ctx context.Context, t *testing.T, m *Manager, id string) {
	t.Helper()
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	mustWrite(t, filepath.Join(tree, "a.txt"), []byte("alpha\n"), 0o640)
	mustWrite(t, filepath.Join(tree, "sub", "b.bin"), payload, 0o600)
	mustWrite(t, filepath.Join(src, "single.txt"), []byte("one file\n"), 0o644)

	if err := m.CopyTo(ctx, id, tree, "/tmp/gocp", nil); err != nil {
		t.Fatalf("CopyTo(dir): %v", err)
	}
	if err := m.CopyTo(ctx, id, filepath.Join(src, "single.txt"), "/tmp/gocp/", &CopyOptions{Transport: TransportSSH}); err != nil {
		t.Fatalf("CopyTo(file into dir/): %v", err)
	}
	r, err := m.Exec(ctx, id, "sh", "-c", "cat /tmp/gocp/a.txt /tmp/gocp/single.txt; wc -c < /tmp/gocp/sub/b.bin")
	if err != nil || string(r.Stdout) != "alpha\none file\n"+strconv.Itoa(len(payload))+"\n" {
		t.Fatalf("the copied files in the guest: %+v, %v", r, err)
	}

	back := filepath.Join(t.TempDir(), "back")
	if err := m.CopyFrom(ctx, id, "/tmp/gocp", back, &CopyOptions{Archive: true}); err != nil {
		t.Fatalf("CopyFrom(dir): %v", err)
	}
	for name, want := range map[string][]byte{
		"a.txt": []byte("alpha\n"), "sub/b.bin": payload, "single.txt": []byte("one file\n"),
	} {
		got, err := os.ReadFile(filepath.Join(back, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s copied back: %d bytes, %v (want %d bytes)", name, len(got), err, len(want))
		}
	}
	if fi, err := os.Stat(filepath.Join(back, "a.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("a.txt's mode after the round trip: %v, %v", fi.Mode(), err)
	}

	if err := m.CopyFrom(ctx, id, "/nonexistent/x", back, nil); !errors.Is(err, ErrInvalidInput) ||
		!strings.Contains(err.Error(), "/nonexistent/x") {
		t.Fatalf("CopyFrom(missing guest path) = %v", err)
	}
	missing := filepath.Join(src, "missing")
	if err := m.CopyTo(ctx, id, missing, "/tmp/", nil); !errors.Is(err, ErrInvalidInput) ||
		!strings.Contains(err.Error(), missing) {
		t.Fatalf("CopyTo(missing host path) = %v", err)
	}
	if err := m.CopyTo(ctx, id, tree, "/tmp/gocp/a.txt", nil); err == nil {
		t.Fatal("CopyTo(a directory onto a file) succeeded")
	}
}

func mustWrite(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// freePort is a loopback TCP port nothing listens on right now.
func freePort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

// snapshotAndClone snapshots the running guest, resumes one clone from it
// (the guest's memory comes along), and checks the refusals around them:
// a snapshot in use, and a commit of a guest without a disk.
func snapshotAndClone(ctx context.Context, t *testing.T, m *Manager, id string) {
	t.Helper()
	if _, err := m.Exec(ctx, id, "sh", "-c", "echo before-snapshot > /tmp/marker"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s, err := m.SnapshotCreate(ctx, id, "go-snap")
	if err != nil {
		t.Fatalf("SnapshotCreate: %v", err)
	}
	tCreate := time.Since(start)
	if s.Name != "go-snap" || s.SourceID != id || s.SourceName != "go-life" || s.MemoryMB != 512 || s.CPUs != 1 ||
		s.Disk || s.Format != FormatKernelInitrd || !filepath.IsAbs(s.Path) || s.Size == 0 || s.CreatedAt.IsZero() ||
		s.QEMUVersion == "" || len(s.Devices) == 0 {
		t.Fatalf("SnapshotCreate = %+v", s)
	}
	if _, err := m.SnapshotCreate(ctx, id, "go-snap"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("SnapshotCreate(taken name) = %v", err)
	}
	if _, err := m.SnapshotCreate(ctx, id, "a/b"); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("SnapshotCreate(bad name) = %v", err)
	}
	list, err := m.SnapshotList()
	if err != nil || len(list) != 1 || list[0].Name != "go-snap" || !list[0].CreatedAt.Equal(s.CreatedAt) {
		t.Fatalf("SnapshotList = %+v, %v", list, err)
	}
	g, err := m.SnapshotGet("go-snap")
	if err != nil || g.Path != s.Path || g.SourceID != id || !g.CreatedAt.Equal(s.CreatedAt) {
		t.Fatalf("SnapshotGet = %+v, %v", g, err)
	}
	if _, err := m.SnapshotGet("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SnapshotGet(nosuch) = %v", err)
	}
	if _, err := m.RunSnapshot(ctx, "go-snap", &RunOptions{Name: "go-clone", MemoryMB: 256}); !errors.Is(err, ErrInvalidInput) ||
		!strings.Contains(err.Error(), "512 MB") {
		t.Fatalf("RunSnapshot with other memory = %v", err)
	}

	// One clone, its SSH port also forwarded on another loopback address.
	sshFwd, other := freePort(t), freePort(t)
	alt := netip.MustParseAddr("127.0.0.2")
	start = time.Now()
	clone, err := m.RunSnapshot(ctx, "go-snap", &RunOptions{Name: "go-clone", Ports: []PortMapping{
		{Host: sshFwd, Guest: 22, Address: alt}, {Host: other, Guest: 80},
	}})
	if err != nil {
		t.Fatalf("RunSnapshot: %v", err)
	}
	r, err := m.Exec(ctx, "go-clone", "cat", "/tmp/marker")
	tWarm := time.Since(start)
	if err != nil || string(r.Stdout) != "before-snapshot\n" {
		t.Fatalf("the clone's memory: %+v, %v", r, err)
	}
	t.Logf("snapshot create %v, run from it to exec %v", tCreate.Round(10*time.Millisecond), tWarm.Round(10*time.Millisecond))
	if clone.ID == id || clone.Snapshot != "go-snap" || clone.Status != StatusRunning || clone.MemoryMB != 512 ||
		clone.Ports[sshFwd] != 22 || clone.BindAddresses[sshFwd] != alt ||
		clone.BindAddresses[other] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("RunSnapshot = %+v", clone)
	}
	d, err := m.Inspect("go-clone")
	if err != nil || d.Snapshot != "go-snap" || len(d.Forwards) != 2 || d.BindAddresses[sshFwd] != alt {
		t.Fatalf("Inspect(clone) = %+v, %v", d, err)
	}
	// The mapping listens where it was told: the guest's SSH banner there.
	conn, err := net.DialTimeout("tcp", netip.AddrPortFrom(alt, sshFwd).String(), 10*time.Second)
	if err != nil {
		t.Fatalf("dialling the forward on %v: %v", alt, err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	banner, err := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if err != nil || !strings.HasPrefix(banner, "SSH-") {
		t.Fatalf("through the forward on %v: %q, %v", alt, banner, err)
	}

	if err := m.SnapshotRemove("go-snap"); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "go-clone") {
		t.Fatalf("SnapshotRemove(in use) = %v", err)
	}
	// A kernel+initrd guest has no disk to commit; nothing is written.
	image := filepath.Join(t.TempDir(), "clone.qcow2")
	if err := m.Commit(ctx, "go-clone", image); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "no disk") {
		t.Fatalf("Commit(kernel guest) = %v", err)
	}
	if _, err := os.Stat(image); !os.IsNotExist(err) {
		t.Fatalf("a refused Commit left %s: %v", image, err)
	}
	if _, err := m.Remove(ctx, "go-clone", true); err != nil {
		t.Fatalf("Remove(clone): %v", err)
	}
	if err := m.SnapshotRemove("go-snap"); err != nil {
		t.Fatalf("SnapshotRemove: %v", err)
	}
	if list, err := m.SnapshotList(); err != nil || len(list) != 0 {
		t.Fatalf("SnapshotList after removing = %+v, %v", list, err)
	}
	if err := m.SnapshotRemove("go-snap"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SnapshotRemove twice = %v", err)
	}
}
