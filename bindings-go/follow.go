package vmcontainer

/*
#include <vmcontainer.h>
*/
import "C"

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
)

// LogStream follows a container's serial log: the output already written,
// then new output within milliseconds of the guest writing it, ending
// (io.EOF) when the container stops. Read it as an io.Reader (lines end in
// "\n") or line by line with Next (or Lines, an iterator, with Go 1.23);
// not both. Close it when done:
// Close also ends a Read or Next blocked in another goroutine.
type LogStream struct {
	ctx context.Context
	// mu is held for the duration of a C call on f.
	mu     sync.Mutex
	f      *C.vmc_log_follower_t
	view   *C.vmc_manager_t
	tok    *token
	buf    []byte
	err    error
	closed bool
}

// Follow opens a LogStream on the log of container ref. Cancelling ctx
// ends the stream (Read and Next then return ctx.Err()).
func (m *Manager) Follow(ctx context.Context, ref string) (*LogStream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer runtime.KeepAlive(m)
	// Every stream gets a token, so Close can interrupt a blocked read.
	t := newToken(ctx)
	var view *C.vmc_manager_t
	var e *C.vmc_error_t
	if err := check(C.vmc_manager_with_cancel(m.ptr, t.ptr, &view, &e), e); err != nil {
		t.release()
		return nil, err
	}
	r := cString(ref)
	defer free(r)
	var f *C.vmc_log_follower_t
	if err := check(C.vmc_manager_logs_follower(view, r, &f, &e), e); err != nil {
		C.vmc_manager_free(view)
		t.release()
		return nil, err
	}
	s := &LogStream{ctx: ctx, f: f, view: view, tok: t}
	runtime.SetFinalizer(s, (*LogStream).Close)
	return s, nil
}

// Next returns the next line (without its line ending); io.EOF once the
// container has stopped and everything was read.
func (s *LogStream) Next() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return "", s.err
	}
	if s.closed {
		return "", errors.New("vmcontainer: read from a closed LogStream")
	}
	var line *C.char
	var e *C.vmc_error_t
	err := check(C.vmc_log_follow_next(s.f, &line, &e), e)
	switch {
	case err != nil && isKind(err, KindCancelled):
		if s.closed {
			err = errors.New("vmcontainer: LogStream closed")
		} else if s.ctx.Err() != nil {
			err = s.ctx.Err()
		}
		s.err = err
		return "", err
	case err != nil:
		return "", err
	case line == nil:
		s.err = io.EOF
		return "", io.EOF
	}
	return takeString(line), nil
}

// Read reads the log as a stream of bytes (each line followed by "\n").
func (s *LogStream) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		line, err := s.Next()
		if err != nil {
			return 0, err
		}
		s.buf = append(s.buf[:0], line...)
		s.buf = append(s.buf, '\n')
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

// Close ends the stream and releases it; a Read or Next blocked in another
// goroutine returns. Calling it twice is harmless.
func (s *LogStream) Close() error {
	s.tok.cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	C.vmc_log_follow_free(s.f)
	C.vmc_manager_free(s.view)
	s.tok.release()
	s.f, s.view = nil, nil
	runtime.SetFinalizer(s, nil)
	return nil
}
