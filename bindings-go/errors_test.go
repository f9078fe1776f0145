package vmcontainer

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// The sentinels are exactly the core's kinds (ErrorKind::ALL, through the
// C library), plus the C boundary's own two, with the library's codes.
func TestSentinelsMatchTheLibrarysKinds(t *testing.T) {
	kinds := libraryKinds()
	if len(kinds) < 17 {
		t.Fatalf("library reports %d kinds: %v", len(kinds), kinds)
	}
	for i, k := range kinds {
		s, ok := sentinels[k]
		if !ok {
			t.Errorf("the library's kind %q has no Go sentinel", k)
			continue
		}
		if s.Code != i+1 {
			t.Errorf("%s: Go code %d, library code %d", k, s.Code, i+1)
		}
	}
	if len(sentinels) != len(kinds)+2 {
		t.Errorf("%d sentinels for %d kinds + invalid_argument + internal", len(sentinels), len(kinds))
	}
	for _, k := range []ErrorKind{KindInvalidArgument, KindInternal} {
		if _, ok := sentinels[k]; !ok {
			t.Errorf("no sentinel for %s", k)
		}
	}
}

func TestErrorsWorkWithErrorsIsAndAs(t *testing.T) {
	m, err := NewManager(&ManagerOptions{Home: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = m.Get("deadbeef")
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrTimeout) {
		t.Fatalf("Get(unknown) = %v", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindNotFound || !strings.Contains(e.Message, "deadbeef") {
		t.Fatalf("errors.As: %#v", e)
	}
	_, err = m.Stop(context.Background(), "deadbeef", DefaultStopTimeout)
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stop(unknown) = %v", err)
	}
	_, err = m.Run(context.Background(), filepath.Join(t.TempDir(), "missing.qcow2"), nil)
	if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "missing.qcow2") {
		t.Fatalf("Run(missing) = %v", err)
	}
	_, err = m.Run(context.Background(), "/x.iso", &RunOptions{PortSpecs: []string{"nope"}})
	if !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("Run(bad port) = %v", err)
	}
	_, err = m.Get("\xff\xfe")
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("Get(not UTF-8) = %v", err)
	}
	_, err = ApplyVariables("${Z} ${A}", nil)
	if !errors.Is(err, ErrTemplateVariables) || !strings.Contains(err.Error(), "A, Z") {
		t.Fatalf("ApplyVariables = %v", err)
	}
	_, err = GetHypervisor("xen")
	if !errors.Is(err, ErrInvalidInput) {
		t.Fatalf("GetHypervisor(xen) = %v", err)
	}
	_, err = GetTemplate(t.TempDir(), "nope")
	if !errors.Is(err, ErrTemplate) || !strings.Contains(err.Error(), "core-dev") {
		t.Fatalf("GetTemplate(nope) = %v", err)
	}
	// A context that is already done never reaches the library.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.WaitReady(ctx, "deadbeef"); err != context.Canceled {
		t.Fatalf("WaitReady(cancelled) = %v", err)
	}
}
