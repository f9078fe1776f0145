package vmcontainer

/*
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>
*/
import "C"

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Cmd is a command to run in a container, shaped like os/exec.Cmd: set
// Stdin, Stdout, Stderr (nil: no input, output discarded), Env ("NAME=VALUE"
// added to the guest's environment), Dir, User, TTY and Timeout, then Run,
// or Start and Wait. Output is copied as the guest produces it. Cancelling
// the context kills the process in the guest (SIGKILL to its process
// group). Make one with Manager.Command; a Cmd runs once.
type Cmd struct {
	// Path is the command name, Args the whole argv (Args[0] == Path).
	Path string
	Args []string
	// Env holds "NAME=VALUE" entries added to the guest's environment.
	Env []string
	// Dir is the working directory in the guest ("" for the default).
	Dir string
	// User runs the command as this guest user (through its su).
	User string
	// TTY gives the command a terminal (all output then goes to Stdout).
	TTY bool
	// Timeout kills the command after this long (Wait returns an error
	// matching ErrTimeout); 0 means none.
	Timeout time.Duration
	// Stdin, Stdout and Stderr as in os/exec.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	// ExitCode is the exit code after Wait (128 + the signal if a signal
	// ended it); Signal is that signal or 0.
	ExitCode int
	Signal   int

	m      *Manager
	ctx    context.Context
	ref    string
	proc   *C.vmc_process_t
	copies sync.WaitGroup
	errs   []error
	mu     sync.Mutex
	done   chan struct{}
	// procMu guards proc against the stdin copier, which Wait does not
	// wait for: it holds a read lock around each call, Wait the write
	// lock to free it.
	procMu sync.RWMutex
	freed  bool
}

// Command returns a Cmd running name with args in container ref.
func (m *Manager) Command(ctx context.Context, ref, name string, args ...string) *Cmd {
	return &Cmd{
		Path: name,
		Args: append([]string{name}, args...),
		m:    m,
		ctx:  ctx,
		ref:  ref,
	}
}

// ExitError is returned by Wait and Run when the command exited non-zero
// or was ended by a signal.
type ExitError struct {
	// Code is the exit code, or 128 + Signal.
	Code int
	// Signal is the signal that ended it, or 0.
	Signal int
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("vmcontainer: command ended by signal %d", e.Signal)
	}
	return fmt.Sprintf("vmcontainer: command exited with code %d", e.Code)
}

// Start starts the command in the guest and the copying of its streams.
func (c *Cmd) Start() error {
	if c.proc != nil {
		return errors.New("vmcontainer: Cmd already started")
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	r := cString(c.ref)
	defer free(r)
	argv, releaseArgv := cStrings(c.Args)
	defer releaseArgv()
	env, releaseEnv := cStrings(c.Env)
	defer releaseEnv()
	dir := optCString(c.Dir)
	defer free(dir)
	user := optCString(c.User)
	defer free(user)
	tty := C.int(0)
	if c.TTY {
		tty = 1
	}
	var p *C.vmc_process_t
	err := c.m.do(c.ctx, func(mp *C.vmc_manager_t) error {
		var e *C.vmc_error_t
		return check(C.vmc_manager_spawn(mp, r, argv, C.size_t(len(c.Args)), env,
			C.size_t(len(c.Env)), dir, user, tty, C.uint64_t(c.Timeout.Milliseconds()), &p, &e), e)
	})
	if err != nil {
		return err
	}
	c.proc = p
	c.done = make(chan struct{})
	go func() {
		select {
		case <-c.ctx.Done():
			var e *C.vmc_error_t
			if C.vmc_process_kill(p, 9, &e) != C.VMC_OK {
				C.vmc_error_free(e)
			}
		case <-c.done:
		}
	}()
	c.copyIn()
	c.copyOut(C.VMC_STDOUT, c.Stdout)
	c.copyOut(C.VMC_STDERR, c.Stderr)
	return nil
}

func (c *Cmd) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

// copyIn writes Stdin to the process, then closes its stdin.
func (c *Cmd) copyIn() {
	if c.Stdin == nil {
		var e *C.vmc_error_t
		if err := check(C.vmc_process_close_stdin(c.proc, &e), e); err != nil {
			c.fail(err)
		}
		return
	}
	// Not waited for: a Stdin that never ends must not hold Wait up
	// (os/exec does the same for a non-*os.File reader once the process
	// exits).
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, rerr := c.Stdin.Read(buf)
			c.procMu.RLock()
			if c.freed {
				c.procMu.RUnlock()
				return
			}
			if n > 0 {
				p := C.CBytes(buf[:n])
				var e *C.vmc_error_t
				werr := check(C.vmc_process_write(c.proc, (*C.uint8_t)(p), C.size_t(n), &e), e)
				C.free(p)
				if werr != nil {
					c.procMu.RUnlock()
					return // the process stopped reading
				}
			}
			if rerr != nil {
				var e *C.vmc_error_t
				_ = check(C.vmc_process_close_stdin(c.proc, &e), e)
				c.procMu.RUnlock()
				return
			}
			c.procMu.RUnlock()
		}
	}()
}

// copyOut copies one output stream to w as it arrives.
func (c *Cmd) copyOut(stream C.int, w io.Writer) {
	c.copies.Add(1)
	go func() {
		defer c.copies.Done()
		buf := (*C.uint8_t)(C.malloc(64 << 10))
		defer C.free(unsafe.Pointer(buf))
		for {
			var n C.size_t
			var e *C.vmc_error_t
			if err := check(C.vmc_process_read(c.proc, stream, buf, 64<<10, &n, &e), e); err != nil {
				c.fail(err)
				return
			}
			if n == 0 {
				return
			}
			if w != nil {
				if _, err := w.Write(C.GoBytes(unsafe.Pointer(buf), C.int(n))); err != nil {
					c.fail(err)
					return
				}
			}
		}
	}()
}

// Wait waits for the command to end and its output to be copied, then
// releases it. It returns an *ExitError for a non-zero exit or a signal,
// the context's error if it was cancelled, an error matching ErrTimeout
// if Timeout killed it.
func (c *Cmd) Wait() error {
	if c.proc == nil {
		return errors.New("vmcontainer: Cmd not started")
	}
	defer runtime.KeepAlive(c.m)
	c.copies.Wait()
	var code, sig C.int
	var e *C.vmc_error_t
	werr := check(C.vmc_process_wait(c.proc, &code, &sig, &e), e)
	close(c.done)
	c.procMu.Lock()
	c.freed = true
	C.vmc_process_free(c.proc)
	c.procMu.Unlock()
	if werr != nil {
		return werr
	}
	if err := c.ctx.Err(); err != nil {
		return err
	}
	c.ExitCode, c.Signal = int(code), int(sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		return c.errs[0]
	}
	if code != 0 || sig != 0 {
		return &ExitError{Code: int(code), Signal: int(sig)}
	}
	return nil
}

// Run starts the command and waits for it.
func (c *Cmd) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// Output runs the command and returns its standard output.
func (c *Cmd) Output() ([]byte, error) {
	if c.Stdout != nil {
		return nil, errors.New("vmcontainer: Stdout already set")
	}
	var b bytes.Buffer
	c.Stdout = &b
	err := c.Run()
	return b.Bytes(), err
}

// String is the command line, for messages.
func (c *Cmd) String() string { return strings.Join(c.Args, " ") }
