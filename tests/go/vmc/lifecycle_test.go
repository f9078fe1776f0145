package vmc_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vmcontainer-go-test/vmc"
)

// Boot under TCG on a loaded 2-core machine can take minutes.
const readyTimeout = 240 * time.Second

// env returns a required environment variable (set by tests/go/run.sh).
func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set (run tests/go/run.sh)", name)
	}
	return v
}

func wantCode(t *testing.T, err error, code int, needle string) {
	t.Helper()
	var e *vmc.Error
	if !errors.As(err, &e) {
		t.Fatalf("expected a *vmc.Error with code %d, got %v", code, err)
	}
	if e.Code != code || !strings.Contains(e.Message, needle) {
		t.Fatalf("expected code %d with %q, got %d (%s): %s", code, needle, e.Code, e.Kind, e.Message)
	}
}

// newManager creates a manager on the test home and makes sure that every
// container in it is removed when the test ends, passed or failed.
func newManager(t *testing.T) *vmc.Manager {
	t.Helper()
	m, err := vmc.NewManager(env(t, "VMC_TEST_HOME"), "qemu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all, err := m.List()
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, c := range all {
			if _, err := m.Remove(c.ID, true); err != nil {
				t.Errorf("cleanup: removing %s: %v", c.ID, err)
			}
		}
		m.Close()
	})
	return m
}

func TestNoVM(t *testing.T) {
	guest := env(t, "VMC_TEST_GUEST")
	if vmc.Version() != vmc.HeaderVersion {
		t.Fatalf("library %s, header %s", vmc.Version(), vmc.HeaderVersion)
	}
	id, err := vmc.GenerateID()
	if err != nil || len(id) != 8 {
		t.Fatalf("GenerateID: %q %v", id, err)
	}
	for file, want := range map[string]string{
		"vmtest.iso": "iso", "vmtest.qcow2": "qcow2", "vmtest-kernel": "kernel+initrd", "nope": "unknown",
	} {
		got, err := vmc.DetectImageFormat(filepath.Join(guest, file))
		if err != nil || got != want {
			t.Errorf("DetectImageFormat(%s) = %q, %v; want %q", file, got, err, want)
		}
	}
	out, err := vmc.ApplyVariables("a=${A} b=${B:-two}", map[string]string{"A": "1"})
	if err != nil || out != "a=1 b=two" {
		t.Errorf("ApplyVariables = %q, %v", out, err)
	}
	_, err = vmc.ApplyVariables("${Z} ${A}", nil)
	wantCode(t, err, vmc.ErrTemplateVars, "missing required variables: A, Z")

	m := newManager(t)
	_, err = m.Get("deadbeef")
	wantCode(t, err, vmc.ErrNotFound, "deadbeef")
	_, err = m.Stop("deadbeef", time.Second)
	wantCode(t, err, vmc.ErrNotFound, "deadbeef")
	_, err = m.Exec("deadbeef", "true")
	wantCode(t, err, vmc.ErrNotFound, "deadbeef")
	_, err = m.Run("/nonexistent/image.iso", vmc.RunOptions{Detach: true})
	wantCode(t, err, vmc.ErrInvalidInput, "/nonexistent/image.iso")
	junk := filepath.Join(t.TempDir(), "junk.txt")
	if err := os.WriteFile(junk, []byte("not an image\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = m.Run(junk, vmc.RunOptions{Detach: true})
	wantCode(t, err, vmc.ErrInvalidInput, "unknown image format")
	_, err = m.Run(junk, vmc.RunOptions{Ports: []string{"nope"}})
	wantCode(t, err, vmc.ErrInvalidInput, "nope")
	_, err = m.Get("\xff\xfe")
	wantCode(t, err, vmc.ErrInvalidArgument, "UTF-8")
}

func TestLifecycle(t *testing.T) {
	guest := env(t, "VMC_TEST_GUEST")
	m := newManager(t)
	kernel := filepath.Join(guest, "vmtest-kernel")

	start := time.Now()
	c, err := m.Run(kernel, vmc.RunOptions{
		Name: "go-lifecycle", Detach: true, MemoryMB: 512, CPUs: 1,
		SSHKey: filepath.Join(guest, "id_ed25519"),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(c.ID) != 8 || c.Status != "running" || c.PID <= 0 || c.SSHPort == 0 ||
		c.Format != "kernel+initrd" || c.MemoryMB != 512 || c.Name != "go-lifecycle" {
		t.Fatalf("unexpected container after Run: %+v", c)
	}

	f, err := m.Follow(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		line, ok, err := f.Next(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for VMTEST READY: %v", err)
		}
		if !ok {
			t.Fatal("log ended before VMTEST READY")
		}
		if strings.Contains(line, "VMTEST READY") {
			break
		}
	}
	if _, err := m.WaitReady("go-lifecycle", readyTimeout); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	ready := time.Since(start)

	r, err := m.Exec(c.ID, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if r.ExitCode != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Fatalf("Exec = %+v; want exit 3, \"out\\n\", \"err\\n\"", r)
	}

	logs, err := m.Logs(c.ID)
	if err != nil || !strings.Contains(logs, "VMTEST READY") {
		t.Fatalf("Logs lack VMTEST READY (err %v)", err)
	}
	lines := 0
	err = m.FollowLogs(c.ID, func(line string) bool {
		lines++
		return lines < 3
	})
	if err != nil || lines != 3 {
		t.Fatalf("FollowLogs: %d lines, %v", lines, err)
	}
	all, err := m.List()
	if err != nil || len(all) != 1 || all[0].ID != c.ID {
		t.Fatalf("List = %+v, %v", all, err)
	}
	_, err = m.Remove(c.ID, false)
	wantCode(t, err, vmc.ErrRunning, c.ID)

	stopped, err := m.Stop(c.ID, 10*time.Second)
	if err != nil || stopped.Status != "stopped" || stopped.StoppedAt == "" {
		t.Fatalf("Stop = %+v, %v", stopped, err)
	}
	for {
		_, ok, err := f.Next(30 * time.Second)
		if err != nil {
			t.Fatalf("draining the follower: %v", err)
		}
		if !ok {
			break
		}
	}
	_, err = m.Exec(c.ID, "true")
	wantCode(t, err, vmc.ErrNotRunning, c.ID)
	if _, err := m.Remove(c.ID, false); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	_, err = m.Get(c.ID)
	wantCode(t, err, vmc.ErrNotFound, c.ID)
	t.Logf("ready after %.1fs, whole lifecycle %.1fs", ready.Seconds(), time.Since(start).Seconds())
}
