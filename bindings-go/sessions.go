package vmcontainer

/*
#include <stdint.h>
#include <stdlib.h>
#include <vmcontainer.h>
*/
import "C"

import (
	"context"
	"io"
	"os"
	"runtime"
	"sort"
	"sync"
)

// Stdio are the standard streams of a dev session. A nil field means this
// process's own stream (the sessions are interactive: a shell, a test run,
// Claude). An *os.File is handed to the session directly; any other
// reader or writer is connected through a pipe, as os/exec does.
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// ShellOptions says what Shell opens.
type ShellOptions struct {
	Stdio
	// Command runs instead of a login shell (each element one argument).
	Command []string
	// Console attaches to the VM's serial console instead of SSH (a
	// terminal detaches with Ctrl-]; the session also ends with stdin).
	Console bool
	// NoAgent does not forward the SSH agent even when SSH_AUTH_SOCK is
	// set.
	NoAgent bool
}

// ServeOptions says what Serve serves.
type ServeOptions struct {
	Stdio
	// Project is the project directory (default: the working directory).
	Project string
	// Path is a subdirectory of the project to serve from.
	Path string
	// Port is the host port on 127.0.0.1 (0: 8000).
	Port uint16
	// GuestPort is the port the server listens on in the guest (0: 8000).
	GuestPort uint16
	// Command runs instead of the detected one.
	Command []string
}

// TestOptions says which tests Test runs.
type TestOptions struct {
	Stdio
	// Project is the project directory (default: the working directory).
	Project string
	// Name is a command named in .core/test.yaml.
	Name string
	// Command is an explicit command; it wins over Name and detection.
	Command []string
}

// ClaudeOptions says how Claude runs.
type ClaudeOptions struct {
	Stdio
	// Project is the project directory (default: the working directory).
	Project string
	// Model is claude's --model.
	Model string
	// Auth selects the credentials to forward, among "anthropic", "gh",
	// "ssh" and "git"; nil forwards every available one, an empty non-nil
	// slice none.
	Auth []string
	// Env is extra environment for the session (staged like the
	// credentials, never on a command line).
	Env map[string]string
	// Args are further arguments for claude.
	Args []string
	// Boot says how to boot the dev VM when it is not running.
	Boot *BootOptions
}

// session is a vmc_devenv_session_options_t under construction, with the
// pipes that connect non-file streams.
type session struct {
	opts  *C.vmc_devenv_session_options_t
	e     *C.vmc_error_t
	err   error
	close []io.Closer
	wait  sync.WaitGroup
	// open holds descriptors that must stay open until set_stdio has
	// duplicated them.
	open []*os.File
}

func newSession() *session {
	return &session{opts: C.vmc_devenv_session_options_new()}
}

func (s *session) step(code C.vmc_error_code_t) {
	if s.err == nil {
		s.err = check(code, s.e)
	} else if code != C.VMC_OK {
		C.vmc_error_free(s.e)
	}
	s.e = nil
}

func (s *session) str(v string, set func(*C.char, **C.vmc_error_t) C.vmc_error_code_t) {
	if v == "" || s.err != nil {
		return
	}
	c := cString(v)
	defer free(c)
	s.step(set(c, &s.e))
}

func (s *session) project(p string) {
	s.str(p, func(c *C.char, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_session_options_set_project(s.opts, c, e)
	})
}

func (s *session) command(argv []string) {
	if len(argv) == 0 || s.err != nil {
		return
	}
	a, release := cStrings(argv)
	defer release()
	s.step(C.vmc_devenv_session_options_set_command(s.opts, a, C.size_t(len(argv)), &s.e))
}

// reader is the descriptor for a session's stdin.
func (s *session) reader(r io.Reader) (C.int, error) {
	switch r := r.(type) {
	case nil:
		return -1, nil
	case *os.File:
		s.open = append(s.open, r)
		return C.int(r.Fd()), nil
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		s.open = append(s.open, pr)
		s.close = append(s.close, pr)
		s.wait.Add(1)
		go func() {
			defer s.wait.Done()
			_, _ = io.Copy(pw, r)
			pw.Close()
		}()
		return C.int(pr.Fd()), nil
	}
}

// writer is the descriptor for a session's stdout or stderr.
func (s *session) writer(w io.Writer) (C.int, error) {
	switch w := w.(type) {
	case nil:
		return -1, nil
	case *os.File:
		s.open = append(s.open, w)
		return C.int(w.Fd()), nil
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return -1, err
		}
		s.open = append(s.open, pw)
		s.close = append(s.close, pw)
		s.wait.Add(1)
		go func() {
			defer s.wait.Done()
			_, _ = io.Copy(w, pr)
			pr.Close()
		}()
		return C.int(pw.Fd()), nil
	}
}

func (s *session) stdio(io Stdio) {
	if s.err != nil || (io.Stdin == nil && io.Stdout == nil && io.Stderr == nil) {
		return
	}
	in, err := s.reader(io.Stdin)
	if err == nil {
		var out, errOut C.int
		if out, err = s.writer(io.Stdout); err == nil {
			if errOut, err = s.writer(io.Stderr); err == nil {
				s.step(C.vmc_devenv_session_options_set_stdio(s.opts, in, out, errOut, &s.e))
			}
		}
	}
	if err != nil && s.err == nil {
		s.err = &Error{Kind: KindIO, Code: int(C.VMC_ERROR_IO), Message: "connecting the session's streams: " + err.Error()}
	}
	// The library holds duplicates now: close our pipe ends, so the
	// copying goroutines see the end of the session.
	for _, c := range s.close {
		c.Close()
	}
	s.close = nil
}

// finish releases the options (and the library's duplicates of the
// descriptors) and waits until the session's output has been copied.
func (s *session) finish() {
	C.vmc_devenv_session_options_free(s.opts)
	s.opts = nil
	for _, c := range s.close {
		c.Close()
	}
	s.wait.Wait()
	// The files whose descriptors set_stdio duplicated stay reachable
	// until the session is over.
	runtime.KeepAlive(s.open)
}

// run runs one session call and returns its exit code.
func (d *DevOps) run(ctx context.Context, s *session, call func(*C.vmc_devenv_t, *C.vmc_devenv_session_options_t, *C.int32_t, **C.vmc_error_t) C.vmc_error_code_t) (int, error) {
	if s.err != nil {
		s.finish()
		return -1, s.err
	}
	var code C.int32_t
	err := d.do(ctx, func(dp *C.vmc_devenv_t) error {
		var e *C.vmc_error_t
		return check(call(dp, s.opts, &code, &e), e)
	})
	s.finish()
	if err != nil {
		return -1, err
	}
	return int(code), nil
}

// Shell opens a login shell in the running dev VM over SSH, with the SSH
// agent forwarded (or runs opts.Command, or attaches to the serial
// console), and returns the remote exit code (0 for the console). A
// pseudo-terminal is used when stdin and stdout are terminals. Not running
// → ErrNotRunning.
func (d *DevOps) Shell(ctx context.Context, opts *ShellOptions) (int, error) {
	if opts == nil {
		opts = &ShellOptions{}
	}
	s := newSession()
	s.command(opts.Command)
	if opts.Console {
		s.step(C.vmc_devenv_session_options_set_console(s.opts, true, &s.e))
	}
	if opts.NoAgent {
		s.step(C.vmc_devenv_session_options_set_forward_agent(s.opts, false, &s.e))
	}
	s.stdio(opts.Stdio)
	return d.run(ctx, s, func(dp *C.vmc_devenv_t, o *C.vmc_devenv_session_options_t, code *C.int32_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_shell(dp, o, code, e)
	})
}

func (s *session) serve(opts *ServeOptions) {
	if opts == nil {
		return
	}
	s.project(opts.Project)
	s.str(opts.Path, func(c *C.char, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_session_options_set_path(s.opts, c, e)
	})
	if opts.Port != 0 || opts.GuestPort != 0 {
		s.step(C.vmc_devenv_session_options_set_ports(s.opts, C.uint16_t(opts.Port), C.uint16_t(opts.GuestPort), &s.e))
	}
	s.command(opts.Command)
	s.stdio(opts.Stdio)
}

// Serve serves the project from the running dev VM: opts.Command or the
// detected one, in /app (or /app/opts.Path), with the guest port forwarded
// to 127.0.0.1 while it runs. It returns the server's exit code when the
// server exits; cancelling ctx kills the server, removes the forward and
// returns 130 with ctx.Err().
func (d *DevOps) Serve(ctx context.Context, opts *ServeOptions) (int, error) {
	s := newSession()
	s.serve(opts)
	code, err := d.run(ctx, s, func(dp *C.vmc_devenv_t, o *C.vmc_devenv_session_options_t, code *C.int32_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_serve(dp, o, code, e)
	})
	if err == nil && ctx.Err() != nil {
		return code, ctx.Err()
	}
	return code, err
}

func (s *session) test(opts *TestOptions) {
	if opts == nil {
		return
	}
	s.project(opts.Project)
	s.str(opts.Name, func(c *C.char, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_session_options_set_test_name(s.opts, c, e)
	})
	s.command(opts.Command)
	s.stdio(opts.Stdio)
}

// Test runs the project's tests in the running dev VM (opts.Command, else
// the command named opts.Name in .core/test.yaml, else its default, else
// the detected one) with the file's env, and returns their exit code.
func (d *DevOps) Test(ctx context.Context, opts *TestOptions) (int, error) {
	s := newSession()
	s.test(opts)
	return d.run(ctx, s, func(dp *C.vmc_devenv_t, o *C.vmc_devenv_session_options_t, code *C.int32_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_test(dp, o, code, e)
	})
}

// Claude runs Claude Code in the dev VM (booting it with opts.Boot when it
// is not running) on the project at /app, forwarding the selected
// credentials without putting any secret on a command line, and returns
// its exit code.
func (d *DevOps) Claude(ctx context.Context, opts *ClaudeOptions) (int, error) {
	if opts == nil {
		opts = &ClaudeOptions{}
	}
	s := newSession()
	s.project(opts.Project)
	s.str(opts.Model, func(c *C.char, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_session_options_set_model(s.opts, c, e)
	})
	if opts.Auth != nil && s.err == nil {
		a, release := cStrings(opts.Auth)
		s.step(C.vmc_devenv_session_options_set_auth(s.opts, a, C.size_t(len(opts.Auth)), &s.e))
		release()
	}
	keys := make([]string, 0, len(opts.Env))
	for k := range opts.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s.err != nil {
			break
		}
		ck, cv := cString(k), cString(opts.Env[k])
		s.step(C.vmc_devenv_session_options_add_env(s.opts, ck, cv, &s.e))
		free(ck)
		free(cv)
	}
	if opts.Boot != nil && s.err == nil {
		b, err := opts.Boot.options()
		if err != nil {
			s.err = err
		} else {
			s.step(C.vmc_devenv_session_options_set_boot_options(s.opts, b, &s.e))
			C.vmc_devenv_boot_options_free(b)
		}
	}
	s.command(opts.Args)
	s.stdio(opts.Stdio)
	return d.run(ctx, s, func(dp *C.vmc_devenv_t, o *C.vmc_devenv_session_options_t, code *C.int32_t, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_claude(dp, o, code, e)
	})
}

// commandLine returns the command line a session would run.
func (d *DevOps) commandLine(s *session, call func(*C.vmc_devenv_t, *C.vmc_devenv_session_options_t, **C.char, **C.vmc_error_t) C.vmc_error_code_t) (string, error) {
	defer s.finish()
	if s.err != nil {
		return "", s.err
	}
	defer runtime.KeepAlive(d)
	var p *C.char
	var e *C.vmc_error_t
	if err := check(call(d.ptr, s.opts, &p, &e), e); err != nil {
		return "", err
	}
	return takeString(p), nil
}

// TestCommand returns the shell command line Test would run for opts,
// without running it (needs no VM); ErrInvalidInput when there is none.
func (d *DevOps) TestCommand(opts *TestOptions) (string, error) {
	s := newSession()
	s.test(opts)
	return d.commandLine(s, func(dp *C.vmc_devenv_t, o *C.vmc_devenv_session_options_t, p **C.char, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_test_command(dp, o, p, e)
	})
}

// ServeCommand returns the command Serve would run for opts (given or
// detected), without running it.
func (d *DevOps) ServeCommand(opts *ServeOptions) (string, error) {
	s := newSession()
	s.serve(opts)
	return d.commandLine(s, func(dp *C.vmc_devenv_t, o *C.vmc_devenv_session_options_t, p **C.char, e **C.vmc_error_t) C.vmc_error_code_t {
		return C.vmc_devenv_serve_command(dp, o, p, e)
	})
}
