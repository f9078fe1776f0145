#!/usr/bin/env bash
# C test of libvmcontainer, self-contained for a fresh Debian machine:
# installs what is missing, unpacks the release tarball
# libvmcontainer-VERSION-linux-ARCH.tar.gz from dist/ (scripts/package.sh,
# which also checks that include/vmcontainer.h is current; scripts/test.sh
# builds dist/ once for every suite), builds tests/c/lifecycle.c with cc
# against it through pkg-config twice (linked shared and linked static), and
# runs both under valgrind: the full lifecycle on the test guest, one VM at
# a time. Compiling and running happen without Rust (tests/dist-env.sh: no
# cargo/rustc on PATH, empty HOME).
#
#   bash tests/c/run.sh          unit checks + VM lifecycle (default)
#   bash tests/c/run.sh unit     unit checks only (no VM)
#
# Exits non-zero on any failure or missing tool; never skips.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
mode=${1:-vm}
[[ $mode == vm || $mode == unit ]] || { echo "usage: $0 [unit|vm]" >&2; exit 2; }

log() { echo "tests/c: $*" >&2; }
die() { echo "tests/c: error: $*" >&2; exit 1; }
started=$SECONDS

# --- host tools --------------------------------------------------------------
missing=()
need() { # need PACKAGE COMMAND
	command -v "$2" >/dev/null || missing+=("$1")
}
need gcc cc
need g++ g++ # the header is checked as C++ too
need libc6-dev ldd
need pkg-config pkg-config
need valgrind valgrind
need binutils readelf
need git git
need qemu-system-x86 qemu-system-x86_64
need openssh-client ssh
need python3 python3 # the loopback CDN for the devenv install
need docker-registry docker-registry # the loopback OCI registry
# What tests/guest/build.sh needs to build the guest.
while read -r pkg; do
	[[ -z $pkg || $pkg == \#* ]] && continue
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done <tests/guest/host-packages.txt
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sed '/^$/d' | sort -u)
if ((${#missing[@]})); then
	((EUID == 0)) || die "missing packages (run as root to install): ${missing[*]}"
	log "installing ${missing[*]}"
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- the library from its release tarball --------------------------------------
# shellcheck source=../dist-env.sh
source tests/dist-env.sh
dist=$(dist_dir)
version=$(bash scripts/version.sh)
tarball=$(dist_file "$dist" "libvmcontainer-$version-linux-$(uname -m).tar.gz")
prefix=$repo/.cache/c/prefix
rm -rf "$prefix"
mkdir -p "$prefix"
tar -xzf "$tarball" -C "$prefix" --strip-components=1
clean_env_setup "$repo/.cache/c/env"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
libdir=$(pkg-config --variable=libdir vmcontainer)
out=$prefix/tests-c
mkdir -p "$out"
log "using $(basename "$tarball")"

# --- the header alone: strict C99/C11 and C++17 ---------------------------------
for std in c99 c11; do
	echo '#include <vmcontainer.h>' |
		clean_env cc -std=$std -Wall -Wextra -Wpedantic -Werror -fsyntax-only $(pkg-config --cflags vmcontainer) -x c - ||
		die "include/vmcontainer.h does not compile as $std"
done
echo '#include <vmcontainer.h>
int main() { vmc_error_t *e = nullptr; (void)vmc_generate_id(nullptr, &e); vmc_error_free(e); }' |
	clean_env g++ -std=c++17 -Wall -Wextra -Werror -fsyntax-only $(pkg-config --cflags vmcontainer) -x c++ - ||
	die "include/vmcontainer.h does not compile as C++17"

# --- build the test programs ---------------------------------------------------
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -O1 -g -pthread)
# shellcheck disable=SC2046 # pkg-config output is meant to be split
clean_env cc "${cflags[@]}" -o "$out/lifecycle-shared" tests/c/lifecycle.c \
	$(pkg-config --cflags --libs vmcontainer) -Wl,-rpath,"$libdir"
# shellcheck disable=SC2046
clean_env cc "${cflags[@]}" -o "$out/lifecycle-static" tests/c/lifecycle.c \
	$(pkg-config --cflags --libs vmcontainer-static)
# shellcheck disable=SC2046
clean_env cc "${cflags[@]}" -o "$out/leak-probe" tests/c/leak_probe.c \
	$(pkg-config --cflags --libs vmcontainer) -Wl,-rpath,"$libdir"
readelf -d "$out/lifecycle-shared" | grep -q 'NEEDED.*libvmcontainer\.so' ||
	die "lifecycle-shared does not link libvmcontainer.so"
if readelf -d "$out/lifecycle-static" | grep -q 'libvmcontainer'; then
	die "lifecycle-static links libvmcontainer dynamically"
fi
log "built $out/{lifecycle-shared,lifecycle-static,leak-probe}"

guest=$(bash tests/guest/build.sh | tail -n1)
[[ -f $guest/vmtest-kernel && -f $guest/id_ed25519 ]] || die "no test guest in $guest"

# --- a private home; every VM in it goes away, whatever happens ----------------
home=$(mktemp -d /tmp/vmc-c.XXXXXX)
homes=() # one per program run
cdn_pid=
registry_pid=
kill_leftovers() { # VMs recorded under $1 whose process still runs from $1
	local dir=$1 pid
	[[ -f $dir/containers.json ]] || return 0
	for pid in $(grep -o '"pid": *[0-9]*' "$dir/containers.json" | grep -o '[0-9]*$'); do
		if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir/"; then
			log "killing leftover VM process $pid"
			kill -9 "$pid" 2>/dev/null || true
		fi
	done
}
cleanup() {
	local dir
	for dir in "${homes[@]}"; do
		"$out/lifecycle-shared" cleanup "$guest" "$dir" 2>/dev/null || true
		kill_leftovers "$dir"
	done
	[[ -z $cdn_pid ]] || kill "$cdn_pid" 2>/dev/null || true
	[[ -z $registry_pid ]] || kill "$registry_pid" 2>/dev/null || true
	rm -rf "$home"
}
trap cleanup EXIT

vg=(valgrind --quiet --leak-check=full --show-leak-kinds=definite,possible
	--errors-for-leak-kinds=definite,possible --error-exitcode=99
	--child-silent-after-fork=yes --suppressions="$here/valgrind.supp")

# --- a loopback CDN publishing the guest's qcow2 as dev image 1.0.0 ----------
cdn=$home/cdn
mkdir "$cdn"
case $(uname -m) in
x86_64) arch=amd64 ;;
aarch64) arch=arm64 ;;
*) arch=$(uname -m) ;;
esac
ln -s "$guest/vmtest.qcow2" "$cdn/core-devops-linux-$arch.qcow2"
printf '{"version": "1.0.0", "images": {"core-devops-linux-%s.qcow2": {"sha256": "%s", "size": %s}}}\n' \
	"$arch" "$(sha256sum <"$guest/vmtest.qcow2" | cut -d' ' -f1)" "$(stat -c %s "$guest/vmtest.qcow2")" \
	>"$cdn/manifest.json"
# Two broken releases for the install error paths: tampered/ publishes a
# checksum that does not match its image, gone/ a manifest without the image.
mkdir "$cdn/tampered" "$cdn/gone"
printf 'not really a qcow2 image\n' >"$cdn/tampered/core-devops-linux-$arch.qcow2"
for dir in tampered gone; do
	printf '{"version": "1.0.0", "images": {"core-devops-linux-%s.qcow2": {"sha256": "%s", "size": 25}}}\n' \
		"$arch" "$(printf 'other bytes' | sha256sum | cut -d' ' -f1)" >"$cdn/$dir/manifest.json"
done
python3 -u -m http.server --bind 127.0.0.1 --directory "$cdn" 0 >"$home/cdn.log" 2>&1 &
cdn_pid=$!
for _ in $(seq 100); do
	# The server's shell may not have created the log yet.
	port=$(sed -n 's/.* port \([0-9][0-9]*\).*/\1/p' "$home/cdn.log" 2>/dev/null | head -n1 || true)
	[[ -n $port ]] && break
	sleep 0.1
done
[[ -n ${port:-} ]] || { cat "$home/cdn.log" >&2; die "the loopback CDN did not start"; }
export VMC_TEST_CDN_URL=http://127.0.0.1:$port

# --- a loopback OCI registry (the CNCF distribution registry) -------------------
mkdir "$home/registry"
printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:0\n' \
	"$home/registry/data" >"$home/registry/config.yml"
docker-registry serve "$home/registry/config.yml" >"$home/registry.log" 2>&1 &
registry_pid=$!
registry=
for _ in $(seq 100); do
	registry=$(sed -n 's/.*listening on \(127\.0\.0\.1:[0-9][0-9]*\).*/\1/p' "$home/registry.log" 2>/dev/null | head -n1 || true)
	[[ -n $registry ]] && break
	sleep 0.1
done
[[ -n $registry ]] || { cat "$home/registry.log" >&2; die "the loopback registry did not start"; }
export VMC_TEST_REGISTRY=$registry

# The valgrind setup must be able to fail: a deliberate leak is reported.
mkdir "$home/probe"
homes+=("$home/probe")
set +e
clean_env "${vg[@]}" "$out/leak-probe" "$home/probe" >"$home/probe.log" 2>&1
rc=$?
set -e
[[ $rc == 99 ]] && grep -q 'definitely lost' "$home/probe.log" ||
	{ cat "$home/probe.log" >&2; die "valgrind did not catch the deliberate leak (exit $rc)"; }
log "valgrind catches a deliberate leak"

for link in shared static; do
	mkdir "$home/$link"
	homes+=("$home/$link")
	t0=$SECONDS
	log "lifecycle ($link, $mode mode) under valgrind"
	clean_env "${vg[@]}" "$out/lifecycle-$link" "$mode" "$guest" "$home/$link" ||
		die "lifecycle ($link) failed"
	log "lifecycle ($link) passed in $((SECONDS - t0))s"
done
clean_env_check
log "PASS in $((SECONDS - started))s"
