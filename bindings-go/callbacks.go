package vmcontainer

// Callbacks the library calls on the thread that made the call: the serial
// output of a foreground run, and download progress. They live in their
// own file because cgo forbids C definitions in the preamble of a file
// with //export functions.

/*
#include <stddef.h>
#include <stdint.h>
*/
import "C"

import (
	"io"
	"runtime/cgo"
	"unsafe"
)

//export vmcGoOutput
func vmcGoOutput(userData unsafe.Pointer, data *C.uint8_t, n C.size_t) {
	w := cgo.Handle(uintptr(userData)).Value().(io.Writer)
	// A failing writer must not stop the VM: its log keeps everything.
	_, _ = w.Write(C.GoBytes(unsafe.Pointer(data), C.int(n)))
}

//export vmcGoProgress
func vmcGoProgress(userData unsafe.Pointer, downloaded C.uint64_t, total C.int64_t) {
	fn := cgo.Handle(uintptr(userData)).Value().(func(downloaded, total int64))
	fn(int64(downloaded), int64(total))
}

// unsafePointer converts a C string pointer for C.GoBytes.
func unsafePointer(p *C.char) unsafe.Pointer { return unsafe.Pointer(p) }
