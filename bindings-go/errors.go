package vmcontainer

/*
#include <vmcontainer.h>
*/
import "C"

import (
	"errors"
	"fmt"
)

// ErrorKind is the stable name of a kind of failure, as the core names it
// ("not_found", "timeout", ...): the same in every face of vmcontainer (C
// codes, Python exception classes, Node error codes).
type ErrorKind string

// The kinds of the core, in the order of their C codes, and the two of the
// C boundary itself (KindInvalidArgument, KindInternal).
const (
	KindNotFound              ErrorKind = "not_found"
	KindAmbiguous             ErrorKind = "ambiguous"
	KindNotRunning            ErrorKind = "not_running"
	KindRunning               ErrorKind = "running"
	KindInvalidInput          ErrorKind = "invalid_input"
	KindHypervisorUnavailable ErrorKind = "hypervisor_unavailable"
	KindStartFailed           ErrorKind = "start_failed"
	KindTimeout               ErrorKind = "timeout"
	KindTemplateVariables     ErrorKind = "template_variables"
	KindTemplate              ErrorKind = "template"
	KindLinuxKit              ErrorKind = "linuxkit"
	KindStateCorrupt          ErrorKind = "state_corrupt"
	KindCommunication         ErrorKind = "communication"
	KindIO                    ErrorKind = "io"
	KindDownload              ErrorKind = "download"
	KindChecksum              ErrorKind = "checksum"
	KindCancelled             ErrorKind = "cancelled"
	KindInvalidArgument       ErrorKind = "invalid_argument"
	KindInternal              ErrorKind = "internal"
)

// Error is a failure reported by the library: its kind, its C code and a
// message that names the input that failed.
//
// Compare with errors.Is against the sentinels below, which match any
// error of their kind:
//
//	if errors.Is(err, vmcontainer.ErrNotFound) { ... }
type Error struct {
	// Kind is the stable kind name.
	Kind ErrorKind
	// Code is the C code (vmc_error_code_t).
	Code int
	// Message says what failed; empty in the sentinels.
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "vmcontainer: " + string(e.Kind)
	}
	return "vmcontainer: " + e.Message
}

// Is reports whether target is the sentinel of e's kind (or an *Error
// with the same kind and message).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && (t.Message == "" || t.Message == e.Message)
}

// Sentinels, one per kind, for errors.Is.
var (
	ErrNotFound              = sentinel(KindNotFound, C.VMC_ERROR_NOT_FOUND)
	ErrAmbiguous             = sentinel(KindAmbiguous, C.VMC_ERROR_AMBIGUOUS)
	ErrNotRunning            = sentinel(KindNotRunning, C.VMC_ERROR_NOT_RUNNING)
	ErrRunning               = sentinel(KindRunning, C.VMC_ERROR_RUNNING)
	ErrInvalidInput          = sentinel(KindInvalidInput, C.VMC_ERROR_INVALID_INPUT)
	ErrHypervisorUnavailable = sentinel(KindHypervisorUnavailable, C.VMC_ERROR_HYPERVISOR_UNAVAILABLE)
	ErrStartFailed           = sentinel(KindStartFailed, C.VMC_ERROR_START_FAILED)
	ErrTimeout               = sentinel(KindTimeout, C.VMC_ERROR_TIMEOUT)
	ErrTemplateVariables     = sentinel(KindTemplateVariables, C.VMC_ERROR_TEMPLATE_VARIABLES)
	ErrTemplate              = sentinel(KindTemplate, C.VMC_ERROR_TEMPLATE)
	ErrLinuxKit              = sentinel(KindLinuxKit, C.VMC_ERROR_LINUXKIT)
	ErrStateCorrupt          = sentinel(KindStateCorrupt, C.VMC_ERROR_STATE_CORRUPT)
	ErrCommunication         = sentinel(KindCommunication, C.VMC_ERROR_COMMUNICATION)
	ErrIO                    = sentinel(KindIO, C.VMC_ERROR_IO)
	ErrDownload              = sentinel(KindDownload, C.VMC_ERROR_DOWNLOAD)
	ErrChecksum              = sentinel(KindChecksum, C.VMC_ERROR_CHECKSUM)
	ErrCancelled             = sentinel(KindCancelled, C.VMC_ERROR_CANCELLED)
	ErrInvalidArgument       = sentinel(KindInvalidArgument, C.VMC_ERROR_INVALID_ARGUMENT)
	ErrInternal              = sentinel(KindInternal, C.VMC_ERROR_INTERNAL)
)

// sentinels maps every kind to its sentinel; the tests check it against
// the library's list of kinds (vmc_error_kind_at).
var sentinels = map[ErrorKind]*Error{}

func sentinel(kind ErrorKind, code C.vmc_error_code_t) *Error {
	e := &Error{Kind: kind, Code: int(code)}
	sentinels[kind] = e
	return e
}

// check turns a return code and its error object into a Go error, freeing
// the object.
func check(code C.vmc_error_code_t, e *C.vmc_error_t) error {
	if code == C.VMC_OK {
		return nil
	}
	defer C.vmc_error_free(e)
	out := &Error{Code: int(code), Kind: ErrorKind(goStr(C.vmc_error_code_name(C.int(code))))}
	if e != nil {
		out.Kind = ErrorKind(goStr(C.vmc_error_kind(e)))
		out.Message = goStr(C.vmc_error_message(e))
	}
	return out
}

// isKind reports whether err is an *Error of kind k.
func isKind(err error, k ErrorKind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == k
}

// invalid is an ErrInvalidInput raised by this package for a value the C
// types cannot hold.
func invalid(what string, value any, reason string) error {
	return &Error{
		Kind:    KindInvalidInput,
		Code:    int(C.VMC_ERROR_INVALID_INPUT),
		Message: fmt.Sprintf("invalid %s %q: %s", what, fmt.Sprint(value), reason),
	}
}
