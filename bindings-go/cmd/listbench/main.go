// listbench times Manager.List with many containers in a synthetic state
// file, against the same call in Rust (core/examples/list_bench.rs, built
// in release mode), and prints both and their ratio.
//
//	go run ./cmd/listbench [-containers N] [-runs R]
//
// Run it with a release libvmcontainer (bindings-c/build-lib.sh) on
// PKG_CONFIG_PATH, as bench/list_faces.sh does.
package main

/*
#cgo pkg-config: vmcontainer
#include <stdlib.h>
#include <vmcontainer.h>

// The Rust call alone, in this process: the list through the C ABI,
// freed without converting it.
static int list_only(const vmc_manager_t *m) {
	vmc_container_list_t *list = NULL;
	if (vmc_manager_list(m, &list, NULL) != VMC_OK) return -1;
	int n = (int)vmc_container_list_len(list);
	vmc_container_list_free(list);
	return n;
}

static vmc_manager_t *open_manager(const char *home) {
	vmc_manager_t *m = NULL;
	return vmc_manager_new(home, NULL, &m, NULL) == VMC_OK ? m : NULL;
}
*/
import "C"

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unsafe"

	vmcontainer "github.com/host-uk/vmcontainer/bindings-go"
)

func main() {
	n := flag.Int("containers", 1000, "containers in the state file")
	runs := flag.Int("runs", 200, "timed calls")
	repo := flag.String("repo", "../..", "repository root (for the Rust baseline)")
	flag.Parse()

	home, err := os.MkdirTemp("", "vmc-listbench")
	must(err)
	defer os.RemoveAll(home)
	must(writeState(home, *n))

	m, err := vmcontainer.NewManager(&vmcontainer.ManagerOptions{Home: home})
	must(err)
	defer m.Close()
	all, err := m.List()
	must(err)
	if len(all) != *n {
		panic(fmt.Sprintf("listed %d, wrote %d", len(all), *n))
	}
	for i := 0; i < 10; i++ {
		m.List()
	}
	ch := C.CString(home)
	cm := C.open_manager(ch)
	C.free(unsafe.Pointer(ch))
	if cm == nil {
		panic("vmc_manager_new failed")
	}
	defer C.vmc_manager_free(cm)
	// Interleaved, so all see the same load: the Go call and the same list
	// taken through the C ABI without converting it, call by call, and the
	// Rust program between blocks of them (the machine is shared, and its
	// load drifts within seconds).
	const blocks = 5
	per := (*runs + blocks - 1) / blocks
	var samples, bare, rusts, rustWarms []float64
	build := exec.Command("cargo", "build", "--quiet", "--release", "-p", "vmcontainer", "--example", "list_bench")
	build.Dir, build.Stderr = *repo, os.Stderr
	must(build.Run())
	for b := 0; b < blocks; b++ {
		for i := 0; i < per; i++ {
			t := time.Now()
			v, err := m.List()
			samples = append(samples, float64(time.Since(t).Microseconds()))
			must(err)
			if len(v) != *n {
				panic("short list")
			}
			t = time.Now()
			if int(C.list_only(cm)) != *n {
				panic("short C list")
			}
			bare = append(bare, float64(time.Since(t).Microseconds()))
		}
		rusts = append(rusts, rustMedian(*repo, home, per, false))
		rustWarms = append(rustWarms, rustMedian(*repo, home, per, true))
	}
	goMedian, bareMedian := median(samples), median(bare)
	rust, rustWarm := median(rusts), median(rustWarms)

	fmt.Printf("List() of %d containers, median of %d runs (Rust: median of %d blocks' medians)\n", *n, len(samples), blocks)
	fmt.Printf("rust   blocking::Manager::list()  %8.0f us  (warm heap %0.f us)\n", rust, rustWarm)
	fmt.Printf("go     Manager.List()             %8.0f us\n", goMedian)
	fmt.Printf("same list through the C ABI in this process, unconverted: %.0f us\n", bareMedian)
	fmt.Printf("ratio go/rust (median): %.2f (vs warm heap: %.2f; vs the in-process call: %.2f)\n",
		goMedian/rust, goMedian/rustWarm, goMedian/bareMedian)
}

// median of xs (sorted in place).
func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

// rustMedian runs the Rust baseline (built by main) for one block of
// runs; warmHeap raises glibc's trim and mmap thresholds, as a
// long-running process's heap would be (see tests/python/bench.py).
func rustMedian(repo, home string, runs int, warmHeap bool) float64 {
	target := os.Getenv("CARGO_TARGET_DIR")
	if target == "" {
		target = filepath.Join(repo, "target")
	}
	cmd := exec.Command(filepath.Join(target, "release", "examples", "list_bench"), home, fmt.Sprint(runs))
	if warmHeap {
		cmd.Env = append(os.Environ(), "MALLOC_TRIM_THRESHOLD_=4000000000", "MALLOC_MMAP_THRESHOLD_=4000000000")
	}
	out, err := cmd.Output()
	must(err)
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var r struct {
		MedianUS float64 `json:"median_us"`
	}
	must(json.Unmarshal([]byte(lines[len(lines)-1]), &r))
	return r.MedianUS
}

// writeState writes n stopped containers, shaped like the Python and Node
// benchmarks' records.
func writeState(home string, n int) error {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	containers := map[string]any{}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%08x", i)
		containers[id] = map[string]any{
			"id": id, "name": fmt.Sprintf("bench-%d", i), "image": fmt.Sprintf("/images/guest-%d.qcow2", i%7),
			"status": "stopped", "pid": 0, "started_at": t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
			"ports": map[string]int{fmt.Sprint(8000 + i%100): 80}, "memory": 1024, "cpus": 1,
			"ssh_port": 20000 + i, "hypervisor": "qemu", "accel": "tcg", "format": "qcow2",
			"stopped_at": t0.Add(time.Duration(i)*time.Second + 5*time.Minute).Format(time.RFC3339),
		}
	}
	data, err := json.MarshalIndent(map[string]any{"containers": containers}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(home, "containers.json"), data, 0o600)
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "listbench:", err)
		os.Exit(1)
	}
}
