#!/usr/bin/env bash
# The Go module's suite, self-contained for a fresh Debian machine: installs
# what is missing (Go from Debian's golang-go when the machine has none),
# uses the libvmcontainer that scripts/test.sh built for the C suite too
# ($VMC_LIB_PCDIR) or builds it, then runs gofmt, go vet and `go test -race`
# on bindings-go (the lifecycle, cancellation and devenv tests boot the test
# guest; at most two VMs at once), and builds examples/go-hello against the
# module through its `replace` directive.
#
#   bash bindings-go/run.sh
#
# Exits non-zero on any failure or missing tool; never skips.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cd "$repo"

log() { echo "bindings-go: $*" >&2; }
die() { echo "bindings-go: error: $*" >&2; exit 1; }
started=$SECONDS

# --- host tools --------------------------------------------------------------
go=$(command -v go || true)
[[ -z $go && -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go
missing=()
need() { # need PACKAGE COMMAND
	command -v "$2" >/dev/null || missing+=("$1")
}
[[ -n $go ]] || missing+=(golang-go)
need gcc cc
need libc6-dev ldd
need pkg-config pkg-config
need git git
need qemu-system-x86 qemu-system-x86_64
need qemu-utils qemu-img
need openssh-client ssh
need docker-registry docker-registry # the loopback OCI registry of TestRegistry
while read -r pkg; do # what tests/guest/build.sh needs
	[[ -z $pkg || $pkg == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <tests/guest/host-packages.txt
if ((${#missing[@]})); then
	((EUID == 0)) || die "missing packages (run as root to install): ${missing[*]}"
	log "installing ${missing[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
[[ -n $go ]] || go=$(command -v go) || die "go not found after installing golang-go"
log "using $("$go" version)"

# --- library and pkg-config file ---------------------------------------------
pcdir=${VMC_LIB_PCDIR:-}
if [[ -z $pcdir ]]; then
	pcdir=$(bash bindings-c/build-lib.sh --check-header | tail -n1)
fi
export PKG_CONFIG_PATH=$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
libdir=$(pkg-config --variable=libdir vmcontainer)
# Test binaries find libvmcontainer.so through their run path.
export CGO_ENABLED=1 CGO_LDFLAGS="-Wl,-rpath,$libdir${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
# Never fetch a toolchain or a module: neither module has dependencies.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off

guest=$(bash tests/guest/build.sh | tail -n1)
[[ -f $guest/vmtest-kernel && -f $guest/id_ed25519 ]] || die "no test guest in $guest"
export VMCONTAINER_TEST_GUEST=$guest

# Go, vet and the tests run as a user without Rust would (no cargo or rustc
# on PATH, an empty HOME): the library is the one scripts/test.sh unpacked
# from dist/.
# shellcheck source=../tests/dist-env.sh
source "$repo/tests/dist-env.sh"
clean_env_setup "$repo/.cache/go/env"

# --- the module -----------------------------------------------------------------
cd "$here"
gofmt=${go%/go}/gofmt
[[ -x $gofmt ]] || gofmt=gofmt
unformatted=$("$gofmt" -l . ../examples/go-hello)
[[ -z $unformatted ]] || die "not gofmt-formatted: $unformatted"
clean_env "$go" vet ./...
# -count=1: the library is loaded at run time, so a cached result could
# hide a changed library. -race: the callbacks and cancellation run on
# several goroutines.
t0=$SECONDS
clean_env "$go" test -race -count=1 -timeout 20m -v ./... 2>&1 | sed -u 's/^/  /'
log "go test passed in $((SECONDS - t0))s"

# --- a program in its own module, built against this one with `replace` -------
cd "$repo/examples/go-hello"
clean_env "$go" vet ./...
clean_env "$go" build -o "$libdir/go-hello" .
set +e
"$libdir/go-hello" >/dev/null 2>&1
rc=$?
set -e
[[ $rc == 2 ]] || die "examples/go-hello without arguments exited $rc, expected its usage error (2)"
log "examples/go-hello builds and links against libvmcontainer"
clean_env_check
log "PASS in $((SECONDS - started))s"
