package vmcontainer_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	vmcontainer "github.com/host-uk/vmcontainer/bindings-go"
)

func ExampleApplyVariables() {
	out, err := vmcontainer.ApplyVariables("hostname: ${HOST:-box}\nkey: ${KEY}\n",
		map[string]string{"KEY": "ssh-ed25519 AAAA me"})
	if err != nil {
		panic(err)
	}
	fmt.Print(out)

	_, err = vmcontainer.ApplyVariables("${A} ${B}", nil)
	fmt.Println(errors.Is(err, vmcontainer.ErrTemplateVariables))
	// Output:
	// hostname: box
	// key: ssh-ed25519 AAAA me
	// true
}

func ExampleExtractVariables() {
	required, optional, err := vmcontainer.ExtractVariables("${SSH_KEY} ${MEMORY:-1024} ${NAME}")
	if err != nil {
		panic(err)
	}
	fmt.Println(required, optional)
	// Output: [NAME SSH_KEY] map[MEMORY:1024]
}

func ExampleListTemplates() {
	home, _ := os.MkdirTemp("", "vmc-example")
	defer os.RemoveAll(home)
	list, err := vmcontainer.ListTemplates(home)
	if err != nil {
		panic(err)
	}
	for _, t := range list {
		if t.Builtin {
			fmt.Println(t.Name)
		}
	}
	// Output:
	// core-dev
	// server-php
}

func ExampleManager_Get() {
	home, _ := os.MkdirTemp("", "vmc-example")
	defer os.RemoveAll(home)
	m, err := vmcontainer.NewManager(&vmcontainer.ManagerOptions{Home: home})
	if err != nil {
		panic(err)
	}
	defer m.Close()

	_, err = m.Get("web")
	var e *vmcontainer.Error
	fmt.Println(errors.Is(err, vmcontainer.ErrNotFound), errors.As(err, &e), e.Kind)
	// Output: true true not_found
}

func ExampleManager_List() {
	home, _ := os.MkdirTemp("", "vmc-example")
	defer os.RemoveAll(home)
	m, err := vmcontainer.NewManager(&vmcontainer.ManagerOptions{Home: home})
	if err != nil {
		panic(err)
	}
	defer m.Close()
	all, err := m.List()
	fmt.Println(len(all), err)
	// Output: 0 <nil>
}

// A whole lifecycle: run detached, wait for SSH, exec, follow the log,
// stop, remove. (Not run by go test: it needs a bootable image.)
func ExampleManager_Run() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	m, err := vmcontainer.NewManager(nil)
	if err != nil {
		panic(err)
	}
	defer m.Close()

	c, err := m.Run(ctx, "guest.qcow2", &vmcontainer.RunOptions{
		MemoryMB: 512,
		Ports:    []vmcontainer.PortMapping{{Host: 8080, Guest: 80}},
		SSHKey:   filepath.Join(os.Getenv("HOME"), ".ssh", "id_ed25519"),
	})
	if err != nil {
		panic(err)
	}
	if _, err := m.WaitReady(ctx, c.ID); err != nil {
		panic(err)
	}
	r, err := m.Exec(ctx, c.ID, "uname", "-a")
	if err != nil {
		panic(err)
	}
	fmt.Printf("exit %d: %s", r.ExitCode, r.Stdout)

	logs, err := m.Follow(ctx, c.ID)
	if err != nil {
		panic(err)
	}
	line, err := logs.Next() // or: for line, err := range logs.Lines()
	if err != nil {
		panic(err)
	}
	fmt.Println(line)
	logs.Close()

	if _, err := m.Stop(ctx, c.ID, vmcontainer.DefaultStopTimeout); err != nil {
		panic(err)
	}
	if _, err := m.Remove(ctx, c.ID, false); err != nil {
		panic(err)
	}
}

// Errors carry a kind; errors.Is compares it with a sentinel.
func ExampleError() {
	_, err := vmcontainer.GetHypervisor("xen")
	switch {
	case errors.Is(err, vmcontainer.ErrInvalidInput):
		fmt.Println("unknown hypervisor")
	case errors.Is(err, vmcontainer.ErrHypervisorUnavailable):
		fmt.Println("not installed")
	}
	// Output: unknown hypervisor
}
