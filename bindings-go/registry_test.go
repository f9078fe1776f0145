package vmcontainer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startRegistry starts Debian's docker-registry (the CNCF distribution
// registry) on a loopback port with filesystem storage, stopped when the
// test ends, and returns its "127.0.0.1:PORT". It fails (never skips) when
// docker-registry is missing; scripts/deps.sh installs it.
func startRegistry(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "config.yml")
	body := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:0\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", config)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("docker-registry is not installed (apt-get install docker-registry): %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		t.Fatal("docker-registry did not start")
		return ""
	}
}

// TestRegistry pushes the test guest's qcow2 to a real registry, pulls it
// into another home, exports it for KubeVirt, and checks the errors of bad
// input, with no VM; every C object it got is released.
func TestRegistry(t *testing.T) {
	reg := startRegistry(t)
	disks, _ := filepath.Glob(filepath.Join(guest(t), "*.qcow2"))
	if len(disks) == 0 {
		t.Fatal("no qcow2 in the test guest")
	}
	disk := disks[0]
	want, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(want))
	ctx := context.Background()
	before := liveObjects()
	_, m := home(t)
	_, other := home(t)

	ref := reg + "/faces/go-disk:v1"
	var last [2]int64
	calls := 0
	pushed, err := m.Push(ctx, disk, ref, &PushOptions{Progress: func(done, total int64) {
		calls++
		last = [2]int64{done, total}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(pushed.Digest) ||
		pushed.Reference != ref || pushed.Format != "qcow2" || pushed.Kind != "vmcontainer" || int64(pushed.Size) != size {
		t.Fatalf("push result %+v", pushed)
	}
	if calls == 0 || last != [2]int64{size, size} {
		t.Fatalf("progress: %d calls, last %v", calls, last)
	}

	pulled, err := other.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pulled.Digest != pushed.Digest || pulled.Format != "qcow2" || pulled.AlreadyPresent ||
		int64(pulled.Downloaded) != size || pulled.Pulled.IsZero() || !strings.HasPrefix(pulled.Path, other.Home()) {
		t.Fatalf("pull result %+v", pulled)
	}
	got, err := os.ReadFile(pulled.Path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the pulled file differs from the pushed one (%v)", err)
	}
	again, err := other.Pull(ctx, ref, &PullOptions{})
	if err != nil || !again.AlreadyPresent || again.Downloaded != 0 {
		t.Fatalf("second pull %+v, %v", again, err)
	}
	list, err := other.PulledImages()
	if err != nil || len(list) != 1 || list[0].Reference != ref || list[0].Path != pulled.Path || !list[0].AlreadyPresent {
		t.Fatalf("pulled images %+v, %v", list, err)
	}

	// The export needs a containerDisk, then boots it.
	if _, err := m.ExportKubeVirt(ctx, disk, nil); !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "--containerdisk") {
		t.Fatalf("export without a containerDisk: %v", err)
	}
	cd := reg + "/faces/go-containerdisk:v1"
	if r, err := m.Push(ctx, disk, cd, &PushOptions{ContainerDisk: true}); err != nil || r.Kind != "containerdisk" {
		t.Fatalf("containerDisk push %+v, %v", r, err)
	}
	yaml, err := m.ExportKubeVirt(ctx, disk, nil)
	if err != nil || !strings.Contains(yaml, "kind: VirtualMachine") || !strings.Contains(yaml, cd) {
		t.Fatalf("export: %v\n%s", err, yaml)
	}
	named := reg + "/faces/other:v2"
	if yaml, err := m.ExportKubeVirt(ctx, disk, &ExportOptions{ImageRef: named}); err != nil || !strings.Contains(yaml, named) {
		t.Fatalf("export with ImageRef: %v\n%s", err, yaml)
	}
	if _, err := m.ExportKubeVirt(ctx, "no-such-thing", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("export of nothing: %v", err)
	}

	// Bad input names what failed.
	if _, err := m.Pull(ctx, reg+"/faces/go-missing:v1", nil); !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "go-missing") {
		t.Fatalf("pull of a missing tag: %v", err)
	}
	if _, err := m.Push(ctx, disk, reg+"/../etc:v1", nil); !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("push to a traversing reference: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := l.Addr().String()
	l.Close()
	if _, err := m.Pull(ctx, down+"/faces/x:v1", nil); !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), down) {
		t.Fatalf("pull from a registry that is down: %v", err)
	}

	// A cancelled context ends a pull from a registry that never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	start := time.Now()
	if _, err := m.Pull(cctx, silent.Addr().String()+"/faces/hang:v1", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pull with an expired context: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("the cancelled pull took %v", d)
	}

	m.Close()
	other.Close()
	if after := liveObjects(); after != before {
		t.Fatalf("%d C objects or strings were not released", after-before)
	}
}
