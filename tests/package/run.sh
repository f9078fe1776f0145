#!/usr/bin/env bash
# The packaged artefacts (scripts/package.sh -> dist/), installed the way a
# user without Rust installs them: in an environment whose PATH has no
# cargo, rustc or rustup (a tripwire records any call) and whose HOME is
# empty.
#
#   - the CLI tarball: unpacked anywhere, --version, ps, templates, and the
#     test guest booted, exec'd into, stopped and removed;
#   - the C library tarball: unpacked, then moved (the .pc files are
#     relocatable), the SONAME and its symlinks, pkg-config, a C program
#     linked shared and static that prints vmc_version();
#   - the npm tarballs: installed into a fresh project with the registry
#     unreachable (the optional platform dependency resolves to the local
#     tarball), no install script, require() and import, list(), the addon
#     loaded from @vmcontainer/<platform>;
#   - the wheel: a fresh venv with no index, `import vmcontainer`, list();
#   - the Go module, when bindings-go/ exists: Version();
#   - one version everywhere: each artefact's own answer equals the
#     workspace version.
# The full suites of each face (tests/{c,go,python,node}) then run from
# the same artefacts.
#
#   bash tests/package/run.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../dist-env.sh
source "$repo/tests/dist-env.sh"

log() { echo "tests/package: $*" >&2; }
die() { echo "tests/package: error: $*" >&2; exit 1; }
started=$SECONDS

for tool in cc pkg-config readelf node npm python3 qemu-system-x86_64 ssh; do
	command -v "$tool" >/dev/null || die "$tool is not installed"
done
dist=$(dist_dir)
version=$(bash "$repo/scripts/version.sh")
case $(uname -m) in
x86_64) npm_platform=linux-x64-gnu ;;
aarch64) npm_platform=linux-arm64-gnu ;;
*) die "no npm platform name for $(uname -m)" ;;
esac
suffix=linux-$(uname -m)
python=$(python3 -c 'import sys; print(sys.executable)')

work=$(mktemp -d "${TMPDIR:-/tmp}/vmc-pkg.XXXXXX")
home=$work/vmc # VMCONTAINER_HOME of the VM check: short socket paths
mkdir -m 0700 "$home"
cleanup() {
	local pid
	if [[ -f $home/containers.json ]]; then
		for pid in $(grep -o '"pid": *[0-9]*' "$home/containers.json" | grep -o '[0-9]*$'); do
			if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$home/"; then
				log "killing leftover VM process $pid"
				kill -9 "$pid" 2>/dev/null || true
			fi
		done
	fi
	rm -rf "$work"
}
trap cleanup EXIT
clean_env_setup "$work/env"
versions=() # "ARTEFACT<TAB>VERSION IT REPORTS"

# --- the CLI -------------------------------------------------------------------------
t0=$SECONDS
mkdir "$work/cli"
tar -xzf "$(dist_file "$dist" "vmcontainer-$version-$suffix.tar.gz")" -C "$work/cli"
cli=$work/cli/vmcontainer-$version-$suffix/vmcontainer
[[ -x $cli ]] || die "the CLI tarball has no vmcontainer-$version-$suffix/vmcontainer"
if ldd "$cli" | grep -v -E 'linux-vdso|ld-linux|lib(c|m|gcc_s|pthread|dl|rt|util)\.so' | grep -q .; then
	ldd "$cli" >&2
	die "the CLI needs libraries beyond the C runtime"
fi
vmc() { clean_env env VMCONTAINER_HOME="$home" "$cli" "$@"; }
versions+=("CLI (vmcontainer --version)	$(vmc --version | awk '{print $2}')")
[[ $(vmc ps -a --json) == "[]" ]] || die "ps in an empty home is not []"
# Whole outputs, not piped into grep -q: an early-closed pipe is not what
# is tested here.
[[ $(vmc templates --json) == *'"core-dev"'* ]] || die "templates does not list core-dev"
guest=${VMCONTAINER_TEST_GUEST:-$(bash "$repo/tests/guest/build.sh" | tail -n1)}
install -m 0600 "$guest/id_ed25519" "$work/key"
id=$(vmc run -d --name pkg --memory 256 --ssh-key "$work/key" "$guest/vmtest-kernel")
vmc wait --timeout 240 "$id" >/dev/null
[[ $(vmc exec pkg echo packaged) == packaged ]] || die "exec through the packaged CLI failed"
[[ $(vmc ps --json) == *"\"$id\""* ]] || die "ps does not show $id"
vmc stop pkg >/dev/null
vmc rm pkg >/dev/null
[[ $(vmc ps -a --json) == "[]" ]] || die "rm left a container behind"
log "CLI: ok ($((SECONDS - t0)) s, booted the test guest)"

# --- the C library -------------------------------------------------------------------
t0=$SECONDS
mkdir "$work/unpacked"
tar -xzf "$(dist_file "$dist" "libvmcontainer-$version-$suffix.tar.gz")" -C "$work/unpacked"
# Moved after unpacking: nothing may point at where it was first.
prefix=$work/moved/prefix
mkdir -p "$(dirname "$prefix")"
mv "$work/unpacked/libvmcontainer-$version-$suffix" "$prefix"
major=${version%%.*} minor=${version#*.}
minor=${minor%%.*}
if [[ $major == 0 ]]; then sover=0.$minor; else sover=$major; fi
for f in libvmcontainer.so "libvmcontainer.so.$sover" "libvmcontainer.so.$version" libvmcontainer.a \
	pkgconfig/vmcontainer.pc pkgconfig/vmcontainer-static.pc; do
	[[ -e $prefix/lib/$f ]] || die "the library tarball has no lib/$f"
done
[[ -f $prefix/include/vmcontainer.h ]] || die "the library tarball has no include/vmcontainer.h"
[[ $(readlink "$prefix/lib/libvmcontainer.so") == "libvmcontainer.so.$sover" &&
	$(readlink "$prefix/lib/libvmcontainer.so.$sover") == "libvmcontainer.so.$version" ]] ||
	die "lib/libvmcontainer.so -> .so.$sover -> .so.$version symlinks are wrong"
readelf -d "$prefix/lib/libvmcontainer.so.$version" | grep -q "SONAME.*\[libvmcontainer\.so\.$sover\]" ||
	die "libvmcontainer.so.$version has no SONAME libvmcontainer.so.$sover"
cmp -s "$prefix/include/vmcontainer.h" "$repo/include/vmcontainer.h" ||
	die "the packaged header differs from include/vmcontainer.h"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
[[ $(pkg-config --modversion vmcontainer) == "$version" ]] || die "pkg-config --modversion is not $version"
libdir=$(pkg-config --variable=libdir vmcontainer)
[[ $(cd "$libdir" && pwd -P) == $(cd "$prefix/lib" && pwd -P) ]] ||
	die "pkg-config's libdir $libdir is not the moved prefix's"
cat >"$work/version.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <vmcontainer.h>
/* Prints the loaded library's version; fails if the header's differs. */
int main(void) {
	if (strcmp(vmc_version(), VMC_VERSION) != 0) {
		fprintf(stderr, "header %s, library %s\n", VMC_VERSION, vmc_version());
		return 1;
	}
	vmc_error_t *err = NULL;
	char *id = NULL;
	if (vmc_generate_id(&id, &err) != VMC_OK) return 1;
	printf("%s %zu\n", vmc_version(), strlen(id));
	vmc_string_free(id);
	return 0;
}
EOF
# shellcheck disable=SC2046 # pkg-config output is meant to be split
clean_env cc -std=c11 -Wall -Werror -o "$work/version-shared" "$work/version.c" \
	$(pkg-config --cflags --libs vmcontainer) -Wl,-rpath,"$libdir"
# shellcheck disable=SC2046
clean_env cc -std=c11 -Wall -Werror -o "$work/version-static" "$work/version.c" \
	$(pkg-config --cflags --libs vmcontainer-static)
readelf -d "$work/version-shared" | grep -q "NEEDED.*\[libvmcontainer\.so\.$sover\]" ||
	die "a program linked with -lvmcontainer does not record libvmcontainer.so.$sover"
for link in shared static; do
	out=$(clean_env "$work/version-$link") || die "the $link C program failed"
	[[ $out == "$version 8" ]] || die "the $link C program printed '$out'"
done
versions+=("C (vmc_version(), shared)	$(clean_env "$work/version-shared" | cut -d' ' -f1)")
versions+=("C (vmc_version(), static)	$(clean_env "$work/version-static" | cut -d' ' -f1)")
versions+=("C (vmcontainer.pc)	$(pkg-config --modversion vmcontainer)")
versions+=("C (VMC_VERSION in the header)	$(printf '#include <vmcontainer.h>\nVMC_VERSION\n' |
	cc -E -P $(pkg-config --cflags vmcontainer) -x c - | tail -n1 | tr -d '" ')")
log "C library: ok ($((SECONDS - t0)) s, relocated, SONAME libvmcontainer.so.$sover)"

# --- the npm packages ----------------------------------------------------------------
t0=$SECONDS
main_tgz=$(dist_file "$dist" "vmcontainer-$version.tgz")
plat_tgz=$(dist_file "$dist" "vmcontainer-$npm_platform-$version.tgz")
for tgz in "$main_tgz" "$plat_tgz"; do
	if tar -xzOf "$tgz" package/package.json | grep -qE '"(pre|post)?install"|"prepare"'; then
		die "$(basename "$tgz") has an install script"
	fi
done
proj=$work/npm-project
mkdir "$proj"
printf '{ "name": "fresh-project", "version": "1.0.0", "private": true }\n' >"$proj/package.json"
# The registry is a closed loopback port: the optional dependency on
# @vmcontainer/$npm_platform must resolve to the local tarball.
(cd "$proj" && clean_env npm install --registry http://127.0.0.1:9/ --no-audit --no-fund \
	--foreground-scripts "$plat_tgz" "$main_tgz" >&2) ||
	die "npm install of the two tarballs failed"
[[ -f $proj/node_modules/@vmcontainer/$npm_platform/vmcontainer.$npm_platform.node ]] ||
	die "@vmcontainer/$npm_platform was not installed with its addon"
cat >"$proj/check.cjs" <<'EOF'
const vmc = require('vmcontainer')
const { version } = require('vmcontainer/package.json')
const addon = Object.keys(require.cache).find((f) => f.endsWith('.node'))
vmc.Manager && new vmc.Manager({ home: process.argv[2] }).list().then((list) => {
  console.log(JSON.stringify({ version, addon, list, id: vmc.generateId().length }))
})
EOF
cat >"$proj/check.mjs" <<'EOF'
import { Manager, generateId } from 'vmcontainer'
import vmc from 'vmcontainer'
const list = await new Manager({ home: process.argv[2] }).list()
console.log(JSON.stringify({ list, id: generateId().length, same: vmc.Manager === Manager }))
EOF
mkdir -m 0700 "$work/npm-home"
cjs=$(cd "$proj" && clean_env node check.cjs "$work/npm-home")
mjs=$(cd "$proj" && clean_env node check.mjs "$work/npm-home")
node -e '
const [cjs, mjs, plat] = process.argv.slice(1).map((s, i) => (i < 2 ? JSON.parse(s) : s))
const ok = cjs.list.length === 0 && cjs.id === 8 && cjs.addon.includes(`/node_modules/@vmcontainer/${plat}/`) &&
  mjs.list.length === 0 && mjs.id === 8 && mjs.same === true
if (!ok) { console.error({ cjs, mjs }); process.exit(1) }
' "$cjs" "$mjs" "$npm_platform" || die "require/import of the installed package failed"
versions+=("Node (vmcontainer/package.json)	$(node -p 'require(process.argv[1]).version' "$proj/node_modules/vmcontainer/package.json")")
versions+=("Node (@vmcontainer/$npm_platform)	$(node -p 'require(process.argv[1]).version' "$proj/node_modules/@vmcontainer/$npm_platform/package.json")")
versions+=("Node (optionalDependencies pin)	$(node -p 'require(process.argv[1]).optionalDependencies[process.argv[2]]' \
	"$proj/node_modules/vmcontainer/package.json" "@vmcontainer/$npm_platform")")
log "npm: ok ($((SECONDS - t0)) s, no registry, addon from @vmcontainer/$npm_platform)"

# --- the wheel -----------------------------------------------------------------------
t0=$SECONDS
wheel=$(dist_file "$dist" "vmcontainer-$version-cp39-abi3-manylinux_*_$(uname -m).whl")
clean_env "$python" -m venv "$work/venv"
clean_env "$work/venv/bin/pip" install -q --no-index "$wheel"
mkdir -m 0700 "$work/py-home"
py=$(cd "$work" && clean_env "$work/venv/bin/python" -c '
import sys, vmcontainer
print(vmcontainer.__version__, len(vmcontainer.Manager(sys.argv[1]).list()), vmcontainer.__file__)
' "$work/py-home")
read -r py_version py_count py_file <<<"$py"
[[ $py_count == 0 && $py_file == "$work/venv/"* ]] || die "the wheel's module misbehaves: $py"
versions+=("Python (vmcontainer.__version__)	$py_version")
versions+=("Python (wheel metadata)	$(clean_env "$work/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("vmcontainer"))')")
log "wheel: ok ($((SECONDS - t0)) s)"

# --- the Go module (once bindings-go/ exists) --------------------------------------------
if [[ -f $repo/bindings-go/go.mod ]]; then
	t0=$SECONDS
	go=$(command -v go || echo /usr/local/go/bin/go)
	module=$(sed -n 's/^module //p' "$repo/bindings-go/go.mod")
	mkdir "$work/go"
	printf 'module example.com/pkgcheck\n\ngo 1.21\n\nrequire %s v0.0.0\n\nreplace %s => %s\n' \
		"$module" "$module" "$repo/bindings-go" >"$work/go/go.mod"
	printf 'package main\n\nimport (\n\t"fmt"\n\n\tvmc "%s"\n)\n\nfunc main() { fmt.Println(vmc.Version()) }\n' \
		"$module" >"$work/go/main.go"
	go_version=$(cd "$work/go" && clean_env env CGO_ENABLED=1 GOFLAGS=-mod=mod GOPROXY=off GOTOOLCHAIN=local \
		CGO_LDFLAGS="-Wl,-rpath,$libdir" "$go" run .) || die "a Go program using bindings-go failed"
	versions+=("Go (Version())	$go_version")
	log "Go: ok ($((SECONDS - t0)) s)"
fi

clean_env_check
# --- one version ---------------------------------------------------------------------
bad=0
for entry in "${versions[@]}"; do
	IFS=$'\t' read -r what got <<<"$entry"
	if [[ $got == "$version" ]]; then
		log "version: $what = $got"
	else
		echo "tests/package: version: $what = '$got', the workspace says $version" >&2
		bad=1
	fi
done
((bad == 0)) || die "the artefacts disagree about the version"
log "PASS in $((SECONDS - started)) s (no cargo or rustc build step ran)"
