package vmcontainer

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Every C object and string the package gets is released: the library's
// count of live objects is the same before and after many calls, of every
// kind that needs no VM, failing ones included. (The VM paths are checked
// the same way in TestVMLifecycle.)
func TestNoLeaks(t *testing.T) {
	home := t.TempDir()
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "go.mod"), []byte("module x\n"), 0o600)
	os.MkdirAll(filepath.Join(project, ".core"), 0o700)
	os.WriteFile(filepath.Join(project, ".core", "test.yaml"), []byte("version: 1\ncommand: make check\nenv:\n  A: b\n"), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	work := func() {
		m, err := NewManager(&ManagerOptions{Home: home})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := m.List(); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Get("nope"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		m.Inspect("nope")
		m.Logs("nope")
		m.Stop(ctx, "nope", 0)
		m.Exec(ctx, "nope", "true")
		m.Run(ctx, "/nope.iso", &RunOptions{Name: "x", MemoryMB: 64, PortSpecs: []string{"1:2", "bad"}, Volumes: []Volume{{"/no", "/x"}}})
		m.RunTemplate(ctx, "nope", map[string]string{"A": "b"}, nil)
		if s, err := m.Follow(ctx, "nope"); err == nil {
			s.Close()
		}
		m.ExecWith(ctx, "nope", []string{"cat"}, &ExecOptions{Input: []byte("in"), Transport: TransportSSH})
		m.WaitReadyVia(ctx, "nope", TransportAgent)
		m.CopyTo(ctx, "nope", home, "/tmp/", &CopyOptions{Archive: true})
		m.CopyFrom(ctx, "nope", "/etc/hostname", home, nil)
		if _, err := m.SnapshotList(); err != nil {
			t.Fatal(err)
		}
		m.SnapshotGet("nope")
		m.SnapshotCreate(ctx, "nope", "s")
		m.SnapshotRemove("nope")
		m.RunSnapshot(ctx, "nope", &RunOptions{Name: "y", Ports: []PortMapping{{Host: 1, Guest: 2, Address: netip.MustParseAddr("::1")}}})
		m.RunSnapshotAttached(ctx, "nope", nil, &discard{})
		m.Commit(ctx, "nope", filepath.Join(home, "x.qcow2"))
		ListTemplates(home)
		GetTemplate(home, "core-dev")
		ApplyTemplate(home, "core-dev", map[string]string{"SSH_KEY": "k"})
		ApplyVariables("${A:-x} ${B}", map[string]string{"B": "y"})
		ExtractVariables("${A:-x} ${B}")
		GenerateID()
		DetectImageFormat("/nope.qcow2")
		if h, err := GetHypervisor("qemu"); err == nil {
			h.Available()
		}
		d, err := NewDevOps(home)
		if err != nil {
			t.Fatal(err)
		}
		d.Status()
		d.IsRunning()
		d.Boot(ctx, &BootOptions{Project: project, MemoryMB: 64})
		d.Shell(ctx, &ShellOptions{Command: []string{"true"}, Stdio: Stdio{Stdout: &discard{}}})
		d.TestCommand(&TestOptions{Project: project})
		d.ServeCommand(&ServeOptions{Project: project, Port: 9000})
		d.Claude(ctx, &ClaudeOptions{Project: project, Auth: []string{"nope"}})
		d.Close()
		DetectServeCommand(project)
		DetectTestCommand(project)
		LoadTestConfig(project)
		ImageName()
	}
	work() // first use starts the library's runtime
	runtime.GC()
	before := liveObjects()
	for i := 0; i < 20; i++ {
		work()
	}
	runtime.GC()
	if after := liveObjects(); after != before {
		t.Fatalf("libvmcontainer objects alive: %d before, %d after 20 rounds", before, after)
	}
	// The check can fail: an object kept is seen.
	m, _ := NewManager(&ManagerOptions{Home: home})
	if liveObjects() != before+1 {
		t.Fatalf("a live manager is not counted")
	}
	m.Close()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
