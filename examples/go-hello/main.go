// go-hello boots an image as a container, runs a command in it over SSH,
// prints the first lines of its serial log, and removes it again: the
// program of bindings-go/README.md, built by CI against the module with a
// replace directive.
//
//	go run . IMAGE SSH_KEY
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	vmcontainer "github.com/host-uk/vmcontainer/bindings-go"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go-hello IMAGE SSH_KEY")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "go-hello:", err)
		os.Exit(1)
	}
}

func run(image, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	m, err := vmcontainer.NewManager(nil) // $VMCONTAINER_HOME, else ~/.core
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Println("libvmcontainer", vmcontainer.Version())

	c, err := m.Run(ctx, image, &vmcontainer.RunOptions{MemoryMB: 512, SSHKey: key})
	if err != nil {
		return err
	}
	// Whatever happens next, the VM goes away.
	defer m.Remove(context.Background(), c.ID, true)
	fmt.Println("started", c.ID, "with SSH on port", c.SSHPort)

	if _, err := m.WaitReady(ctx, c.ID); err != nil {
		return err
	}
	r, err := m.Exec(ctx, c.ID, "uname", "-sr")
	if err != nil {
		return err
	}
	fmt.Printf("uname: %s", r.Stdout)

	logs, err := m.Follow(ctx, c.ID)
	if err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		line, err := logs.Next()
		if err != nil {
			return err
		}
		fmt.Println("log:", line)
	}
	logs.Close()

	if _, err := m.Stop(ctx, c.ID, vmcontainer.DefaultStopTimeout); err != nil {
		return err
	}
	if _, err := m.Get(c.ID); err != nil && !errors.Is(err, vmcontainer.ErrNotFound) {
		return err
	}
	fmt.Println("stopped", c.ID)
	return nil
}
