#!/usr/bin/env bash
# Go test of libvmcontainer, self-contained for a fresh Debian machine:
# installs what is missing (Go from Debian's golang-go when the machine has
# no Go), unpacks the library's release tarball from dist/
# (scripts/package.sh; scripts/test.sh builds dist/ once for every suite),
# then runs `go vet` and `go test` on tests/go, without Rust
# (tests/dist-env.sh): a cgo package that links libvmcontainer through
# pkg-config and runs the lifecycle on the test guest (one VM).
#
#   bash tests/go/run.sh
#
# Exits non-zero on any failure or missing tool; never skips.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

log() { echo "tests/go: $*" >&2; }
die() { echo "tests/go: error: $*" >&2; exit 1; }
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
need openssh-client ssh
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

# --- the library from its release tarball --------------------------------------
# shellcheck source=../dist-env.sh
source tests/dist-env.sh
dist=$(dist_dir)
version=$(bash scripts/version.sh)
prefix=$repo/.cache/go/prefix
rm -rf "$prefix"
mkdir -p "$prefix"
tar -xzf "$(dist_file "$dist" "libvmcontainer-$version-linux-$(uname -m).tar.gz")" -C "$prefix" \
	--strip-components=1
clean_env_setup "$repo/.cache/go/env"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
libdir=$(pkg-config --variable=libdir vmcontainer)
# The test binary finds libvmcontainer.so through its run path.
export CGO_ENABLED=1 CGO_LDFLAGS="-Wl,-rpath,$libdir${CGO_LDFLAGS:+ $CGO_LDFLAGS}"
# Never fetch a toolchain or a module: the module has no dependencies.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod GOPROXY=off

guest=$(bash tests/guest/build.sh | tail -n1)
[[ -f $guest/vmtest-kernel && -f $guest/id_ed25519 ]] || die "no test guest in $guest"

# --- a private home; every VM in it goes away, whatever happens ----------------
home=$(mktemp -d /tmp/vmc-go.XXXXXX)
cleanup() {
	# The test removes its containers itself (t.Cleanup); this catches a
	# crash: hypervisors recorded under $home whose process still runs
	# from $home.
	local pid
	if [[ -f $home/containers.json ]]; then
		for pid in $(grep -o '"pid": *[0-9]*' "$home/containers.json" | grep -o '[0-9]*$'); do
			if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$home/"; then
				log "killing leftover VM process $pid"
				kill -9 "$pid" 2>/dev/null || true
			fi
		done
	fi
	rm -rf "$home"
}
trap cleanup EXIT

cd "$here"
unformatted=$(gofmt -l .)
[[ -z $unformatted ]] || die "not gofmt-formatted: $unformatted"
clean_env "$go" vet ./...
# -count=1: the library is loaded at run time, so a cached result could
# hide a changed library.
clean_env env VMC_TEST_HOME="$home" VMC_TEST_GUEST="$guest" "$go" test -count=1 -v ./...
clean_env_check
log "PASS in $((SECONDS - started))s"
