package vmcontainer

/*
#include <vmcontainer.h>
*/
import "C"

// libraryKinds is the core's list of error kinds, as the loaded library
// reports it (vmc_error_kind_at); the tests check the sentinels against it.
func libraryKinds() []ErrorKind {
	n := int(C.vmc_error_kind_count())
	out := make([]ErrorKind, n)
	for i := range out {
		out[i] = ErrorKind(goStr(C.vmc_error_kind_at(C.size_t(i))))
	}
	return out
}

// liveObjects is how many objects and strings the library has handed out
// and not had back (vmc_live_objects); the leak tests compare it before
// and after a piece of work.
func liveObjects() int64 { return int64(C.vmc_live_objects()) }
