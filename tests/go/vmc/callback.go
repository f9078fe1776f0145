package vmc

// Exported to C: the log-line callback used by (*Manager).FollowLogs. It
// lives in its own file because cgo forbids C definitions in the preamble
// of a file that has //export functions.

/*
#include <stddef.h>
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

//export vmcGoLogLine
func vmcGoLogLine(userData unsafe.Pointer, line *C.char, n C.size_t) C.int {
	// userData carries a cgo.Handle (an integer), never a Go pointer.
	fn := cgo.Handle(uintptr(userData)).Value().(func(string) bool)
	if fn(C.GoStringN(line, C.int(n))) {
		return 0
	}
	return 1
}
