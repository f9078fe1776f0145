package vmcontainer

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// commandChecks exercises Manager.Command against running container id
// (called by TestVMLifecycle on its VM).
func commandChecks(t *testing.T, ctx context.Context, m *Manager, id string) {
	t.Helper()
	// Streamed: the first line reaches Stdout before the sleep ends.
	r, w := newLineTimes()
	cmd := m.Command(ctx, id, "sh", "-c", "echo first; sleep 3; echo second")
	cmd.Stdout = w
	if err := cmd.Run(); err != nil {
		t.Fatalf("Command Run: %v", err)
	}
	if got := r.String(); got != "first\nsecond\n" {
		t.Fatalf("stdout %q", got)
	}
	if gap := r.times[len(r.times)-1].Sub(r.times[0]); gap < 2*time.Second {
		t.Fatalf("output not streamed: all of it within %v", gap)
	}

	// 1 MiB of stdin, stderr apart, env, dir, exit code.
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	cmd = m.Command(ctx, id, "sh", "-c", `md5sum; echo "$GREETING $(pwd)" >&2; exit 5`)
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = []string{"GREETING=it's $HOME"}
	cmd.Dir = "/tmp"
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 5 || cmd.ExitCode != 5 {
		t.Fatalf("Output error %v, exit code %d", err, cmd.ExitCode)
	}
	if want := fmt.Sprintf("%x", md5.Sum(data)); !strings.HasPrefix(string(out), want) {
		t.Fatalf("stdin arrived as %q, want md5 %s", out, want)
	}
	if stderr.String() != "it's $HOME /tmp\n" {
		t.Fatalf("stderr %q", stderr.String())
	}

	// Cancelling the context kills it; a timeout says so.
	cctx, cancel := context.WithCancel(ctx)
	cmd = m.Command(cctx, id, "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(500*time.Millisecond, cancel)
	if err := cmd.Wait(); err != context.Canceled {
		t.Fatalf("Wait after cancel = %v, want context.Canceled", err)
	}
	cmd = m.Command(ctx, id, "sleep", "300")
	cmd.Timeout = 1500 * time.Millisecond
	if err := cmd.Run(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run with a timeout = %v, want ErrTimeout", err)
	}
	cmd = m.Command(ctx, id, "tty")
	cmd.TTY = true
	if out, err := cmd.Output(); err != nil || !strings.Contains(string(out), "/dev/pts/") {
		t.Fatalf("tty: %q %v", out, err)
	}
}

// lineTimes records when each Write arrived.
type lineTimes struct {
	bytes.Buffer
	times []time.Time
}

func newLineTimes() (*lineTimes, *lineTimes) { l := &lineTimes{}; return l, l }

func (l *lineTimes) Write(p []byte) (int, error) {
	l.times = append(l.times, time.Now())
	return l.Buffer.Write(p)
}
