package vmcontainer

// Tests that boot the test guest (tests/guest/build.sh) under QEMU: the
// lifecycle with a leak check (exec with input, copy, a snapshot and one
// clone on the same VM: guest_ops_test.go), cancellation through
// contexts, a cancelled foreground run, and the dev environment installed
// from a loopback CDN.
// They fail (never skip) when the guest or QEMU is missing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Boot under TCG on a loaded 2-core machine can take minutes.
const bootTimeout = 240 * time.Second

// guest is the directory of the built test guest: $VMCONTAINER_TEST_GUEST,
// else the repository's cache.
func guest(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VMCONTAINER_TEST_GUEST")
	if dir == "" {
		dir = filepath.Join("..", ".cache", "guest")
	}
	dir, _ = filepath.Abs(dir)
	for _, f := range []string{"vmtest-kernel", "vmtest.qcow2", "id_ed25519"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("no test guest in %s (build it with tests/guest/build.sh, or set VMCONTAINER_TEST_GUEST): %v", dir, err)
		}
	}
	return dir
}

// home is a private home directory, removed after the test, with every VM
// in it removed first (also when the test failed).
func home(t *testing.T) (string, *Manager) {
	t.Helper()
	dir, err := os.MkdirTemp("", "vmc-go")
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewManager(&ManagerOptions{Home: dir, Hypervisor: "qemu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		all, _ := m.List()
		for _, c := range all {
			if _, err := m.Remove(context.Background(), c.ID, true); err != nil {
				t.Errorf("cleanup: removing %s: %v", c.ID, err)
			}
		}
		m.Close()
		os.RemoveAll(dir)
	})
	return dir, m
}

func within(t *testing.T, what string, limit time.Duration, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if d := time.Since(start); d > limit {
		t.Errorf("%s took %v (limit %v)", what, d, limit)
	}
}

// TestVMLifecycle runs first and alone (the other VM tests are parallel),
// so the library's count of live objects can be compared around it.
func TestVMLifecycle(t *testing.T) {
	g := guest(t)
	runtime.GC()
	live := liveObjects()
	dir, m := home(t)
	_ = dir
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	c, err := m.Run(ctx, filepath.Join(g, "vmtest-kernel"), &RunOptions{
		Name: "go-life", MemoryMB: 512, SSHKey: filepath.Join(g, "id_ed25519"),
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(c.ID) != 8 || c.Status != StatusRunning || c.PID <= 0 || c.SSHPort == 0 ||
		c.Format != FormatKernelInitrd || c.MemoryMB != 512 || c.Name != "go-life" || c.StartedAt.IsZero() {
		t.Fatalf("unexpected container after Run: %+v", c)
	}

	// Cancellation during long waits: the guest is still booting.
	short, stop := context.WithTimeout(ctx, 300*time.Millisecond)
	within(t, "WaitReady past its deadline", 10*time.Second, func() {
		if _, err := m.WaitReady(short, c.ID); err != context.DeadlineExceeded {
			t.Errorf("WaitReady with a 300 ms deadline = %v, want context.DeadlineExceeded", err)
		}
	})
	stop()
	cancelled, cancelNow := context.WithCancel(ctx)
	time.AfterFunc(200*time.Millisecond, cancelNow)
	within(t, "a cancelled Exec", 10*time.Second, func() {
		if _, err := m.Exec(cancelled, c.ID, "true"); err != context.Canceled {
			t.Errorf("Exec cancelled while waiting for SSH = %v, want context.Canceled", err)
		}
	})

	stream, err := m.Follow(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	ready, stop := context.WithTimeout(ctx, bootTimeout)
	if _, err := m.WaitReady(ready, "go-life"); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	stop()

	r, err := m.Exec(ctx, c.ID, "sh", "-c", "echo out; echo err >&2; exit 3")
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if r.ExitCode != 3 || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" {
		t.Fatalf("Exec = %d %q %q", r.ExitCode, r.Stdout, r.Stderr)
	}
	// A command that runs long, cancelled: the ssh client is killed.
	sleeping, cancelSleep := context.WithCancel(ctx)
	time.AfterFunc(500*time.Millisecond, cancelSleep)
	within(t, "cancelling a running command", 10*time.Second, func() {
		if _, err := m.Exec(sleeping, c.ID, "sleep", "60"); err != context.Canceled {
			t.Errorf("Exec(sleep 60) cancelled = %v", err)
		}
	})
	commandChecks(t, ctx, m, c.ID)
	if r, err := m.Exec(ctx, c.ID, "echo", "still", "there"); err != nil || string(r.Stdout) != "still there\n" {
		t.Fatalf("Exec after a cancelled one: %+v %v", r, err)
	}
	execInput(ctx, t, m, c.ID)
	copyBothWays(ctx, t, m, c.ID)
	snapshotAndClone(ctx, t, m, c.ID)

	for lines := 0; lines < 3; {
		line, err := stream.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if line != "" {
			lines++
		}
	}
	logs, err := m.Logs(c.ID)
	if err != nil || len(logs) == 0 {
		t.Fatalf("Logs: %d bytes, %v", len(logs), err)
	}
	all, err := m.List()
	if err != nil || len(all) != 1 || all[0].ID != c.ID || all[0].Status != StatusRunning {
		t.Fatalf("List = %+v, %v", all, err)
	}
	d, err := m.Inspect("go-life")
	if err != nil || d.ID != c.ID || d.Ports != nil && len(d.Ports) != 0 {
		t.Fatalf("Inspect = %+v, %v", d, err)
	}
	if _, err := os.Stat(d.LogPath); err != nil {
		t.Fatalf("Inspect's log path: %v", err)
	}
	if _, err := m.Remove(ctx, c.ID, false); !errors.Is(err, ErrRunning) {
		t.Fatalf("Remove(running) = %v", err)
	}

	stopped, err := m.Stop(ctx, c.ID, DefaultStopTimeout)
	if err != nil || stopped.Status != StatusStopped || stopped.StoppedAt.IsZero() {
		t.Fatalf("Stop = %+v, %v", stopped, err)
	}
	// The stream ends once the container has stopped.
	rest := make(chan error, 1)
	go func() { _, err := io.ReadAll(stream); rest <- err }()
	select {
	case err := <-rest:
		if err != nil {
			t.Fatalf("reading the rest of the log: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the log stream did not end after Stop")
	}
	stream.Close()
	stream.Close()

	if _, err := m.Exec(ctx, c.ID, "true"); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Exec(stopped) = %v", err)
	}
	if _, err := m.Remove(ctx, c.ID, false); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := m.Get(c.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(removed) = %v", err)
	}
	m.Close()
	runtime.GC()
	if now := liveObjects(); now != live {
		t.Errorf("libvmcontainer objects alive: %d before, %d after the lifecycle", live, now)
	}
}

// syncBuffer is a bytes.Buffer safe for the output callback and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

// A foreground run streams its serial output; cancelling its context
// powers the VM off and returns context.Canceled.
func TestForegroundRunCancelled(t *testing.T) {
	t.Parallel()
	g := guest(t)
	_, m := home(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	type result struct {
		c   *Container
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := m.RunAttached(ctx, filepath.Join(g, "vmtest-kernel"),
			&RunOptions{Name: "go-fg", MemoryMB: 256, SSHKey: filepath.Join(g, "id_ed25519")}, &out)
		done <- result{c, err}
	}()
	// Ready (SSH answers) means its ACPI handler runs too.
	deadline := time.Now().Add(bootTimeout)
	// Recorded first as "starting", then "running" once QEMU is up.
	for {
		if c, err := m.Get("go-fg"); err == nil && c.Status == StatusRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the foreground container never ran")
		}
		time.Sleep(100 * time.Millisecond)
	}
	ready, stop := context.WithTimeout(context.Background(), bootTimeout)
	if _, err := m.WaitReady(ready, "go-fg"); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	stop()
	if out.Len() == 0 {
		t.Error("no serial output reached the writer")
	}
	cancel()
	select {
	case r := <-done:
		if r.err != context.Canceled || r.c != nil {
			t.Fatalf("RunAttached after cancel = %+v, %v", r.c, r.err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("RunAttached did not return after its context was cancelled")
	}
	c, err := m.Get("go-fg")
	if err != nil || c.Status == StatusRunning {
		t.Fatalf("after the cancelled foreground run: %+v, %v", c, err)
	}
}

// The dev environment, installed from a loopback CDN and booted; sessions
// with Go readers and writers; serve stopped through its context.
func TestDevenv(t *testing.T) {
	t.Parallel()
	g := guest(t)
	dir, m := home(t)
	image, err := os.ReadFile(filepath.Join(g, "vmtest.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(image)
	name := ImageName()
	manifest := fmt.Sprintf(`{"version": "1.0.0", "images": {%q: {"sha256": %q, "size": %d}}}`,
		name, hex.EncodeToString(sum[:]), len(image))
	cdn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/manifest.json":
			io.WriteString(w, manifest)
		case "/" + name:
			http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(image))
		default:
			http.NotFound(w, r)
		}
	}))
	defer cdn.Close()
	cfg := fmt.Sprintf("version: 1\nimages:\n  source: cdn\n  cdn:\n    url: %s\ndev:\n  memory: 512\n  cpus: 1\n  ssh_key: %s\n",
		cdn.URL, filepath.Join(g, "id_ed25519"))
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	project := filepath.Join(dir, "project")
	os.Mkdir(project, 0o700)
	os.WriteFile(filepath.Join(project, "marker.txt"), []byte("project shared at /app\n"), 0o600)

	d, err := NewDevOps(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var calls, last, total int64
	r, err := d.Install(ctx, func(done, all int64) { calls++; last, total = done, all })
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if calls == 0 || last != int64(len(image)) || total != int64(len(image)) {
		t.Errorf("progress: %d calls, ended at %d of %d (file %d)", calls, last, total, len(image))
	}
	if r.Version != "1.0.0" || r.Source != "cdn" || r.SHA256 != hex.EncodeToString(sum[:]) || r.AlreadyInstalled {
		t.Errorf("Install = %+v", r)
	}
	if u, err := d.CheckUpdate(ctx); err != nil || u.HasUpdate || u.Current != "1.0.0" {
		t.Errorf("CheckUpdate = %+v, %v", u, err)
	}
	if r, err := d.Update(ctx, nil); err != nil || r != nil {
		t.Errorf("Update with nothing newer = %+v, %v", r, err)
	}

	c, err := d.Boot(ctx, &BootOptions{Project: project, ReadyTimeout: bootTimeout})
	if err != nil {
		t.Fatalf("Boot: %v", err)
	}
	if c.Name != DevContainerName || c.MemoryMB != 512 {
		t.Errorf("Boot = %+v", c)
	}
	st, err := d.Status()
	if err != nil || !st.Running || st.ImageVersion != "1.0.0" || st.Project != project || st.SSHPort == 0 {
		t.Errorf("Status = %+v, %v", st, err)
	}

	// stdin through a pipe, read to its end (a shell `read` of one line
	// while the session's EOF arrives can end the test guest's dropbear
	// session early, so the command reads to EOF).
	var out, errOut bytes.Buffer
	code, err := d.Shell(ctx, &ShellOptions{
		Command: []string{"sh", "-c", "cat; cat /app/marker.txt; echo oops >&2; exit 4"},
		Stdio:   Stdio{Stdin: strings.NewReader("typed\n"), Stdout: &out, Stderr: &errOut},
		NoAgent: true,
	})
	if err != nil || code != 4 || out.String() != "typed\nproject shared at /app\n" || !strings.Contains(errOut.String(), "oops") {
		t.Errorf("Shell = %d, %v, stdout %q, stderr %q", code, err, out.String(), errOut.String())
	}
	out.Reset()
	code, err = d.Test(ctx, &TestOptions{Project: project, Command: []string{"sh", "-c", "pwd; exit 3"}, Stdio: Stdio{Stdout: &out}})
	if err != nil || code != 3 || out.String() != "/app\n" {
		t.Errorf("Test = %d, %v, %q", code, err, out.String())
	}
	if line, err := d.TestCommand(&TestOptions{Project: project, Command: []string{"go", "test", "./..."}}); err != nil || line != "go test ./..." {
		t.Errorf("TestCommand = %q, %v", line, err)
	}
	if _, err := d.TestCommand(&TestOptions{Project: project}); !errors.Is(err, ErrInvalidInput) {
		t.Errorf("TestCommand without one = %v", err)
	}

	serving, stopServing := context.WithCancel(ctx)
	time.AfterFunc(3*time.Second, stopServing)
	within(t, "a cancelled Serve", 60*time.Second, func() {
		code, err := d.Serve(serving, &ServeOptions{Project: project, Port: 18431, Command: []string{"sleep", "600"}, Stdio: Stdio{Stdout: io.Discard}})
		if code != 130 || err != context.Canceled {
			t.Errorf("Serve cancelled = %d, %v", code, err)
		}
	})

	if _, err := d.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if running, err := d.IsRunning(); err != nil || running {
		t.Errorf("IsRunning after Stop = %v, %v", running, err)
	}
	_ = m
}
