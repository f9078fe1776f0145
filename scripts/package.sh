#!/usr/bin/env bash
# Builds every release artefact into dist/, each installable without Rust:
#
#   vmcontainer-VERSION-cp39-abi3-manylinux_X_Y_ARCH.whl   Python (abi3 wheel, maturin)
#   vmcontainer-VERSION.tgz                                 npm package `vmcontainer`
#   vmcontainer-PLATFORM-VERSION.tgz                        npm package `@vmcontainer/PLATFORM`
#                                                           (the prebuilt addon, e.g. linux-x64-gnu)
#   libvmcontainer-VERSION-OS-ARCH.tar.gz                   C library: lib/ (shared + static),
#                                                           include/, lib/pkgconfig/ (relocatable)
#   vmcontainer-VERSION-OS-ARCH.tar.gz                      the CLI
#   SHA256SUMS
#
#   scripts/package.sh [--target TRIPLE] [--out DIR]
#
# TRIPLE defaults to the host (x86_64-unknown-linux-gnu -> linux-x86_64);
# another target needs its rustup target and a linker (and, for the wheel
# and the addon, what maturin and napi need to cross-compile). Artefacts of
# other targets already in DIR are kept, so several runs can fill one
# dist/. VERSION is the workspace version (scripts/version.sh); the
# packaged header and index.d.ts must be the committed, current ones.
#
# The four faces are built by four commands (cargo twice, napi, maturin)
# that share one target directory and, through workspace-hack/, one set of
# dependency features: the core is compiled once. The script warns if it
# was compiled more often.
#
# Needs cargo, node and npm, python3 (for a tools venv with maturin and
# auditwheel, under .cache/package/), binutils, tar and gzip. Progress goes
# to stderr; stdout lists the artefacts written, one path per line.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out=$repo/dist
target=
while (($#)); do
	case $1 in
	--target) target=${2:?--target needs a target triple}; shift 2 ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	*) echo "package.sh: unknown argument $1 (usage: scripts/package.sh [--target TRIPLE] [--out DIR])" >&2; exit 2 ;;
	esac
done

log() { echo "package.sh: $*" >&2; }
die() { echo "package.sh: error: $*" >&2; exit 1; }
for tool in cargo rustc node npm python3 tar gzip sha256sum; do
	command -v "$tool" >/dev/null || die "$tool is required"
done
started=$SECONDS

version=$(bash scripts/version.sh)
bash scripts/version.sh --check
host=$(rustc -vV | sed -n 's/^host: //p')
triple=${target:-$host}
arch=${triple%%-*}
case $triple in
*-linux-gnu*) suffix=linux-$arch ;;
*-linux-musl*) suffix=linux-$arch-musl ;;
*-apple-darwin) suffix=macos-$arch ;;
*) die "no package name for the target $triple" ;;
esac
# Always explicit, also for the host: napi passes --target itself, and
# cargo puts a build with --target in its own directory (TARGET/TRIPLE/),
# so the other builds must be there too to share it.
target_args=(--target "$triple")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
bindir=$CARGO_TARGET_DIR/$triple/release
in_git=0
git rev-parse --is-inside-work-tree >/dev/null 2>&1 && in_git=1

# Release builds carry no debug information (profile.release), but keep
# their symbol tables: panics, perf and valgrind (tests/c's suppressions)
# name functions. Only the static library is stripped of the debug
# sections that Rust's standard library brings along.
strip_tool=strip
[[ $triple == "$host" ]] || strip_tool=$(command -v "${arch}-linux-gnu-strip" || command -v llvm-strip || true)
strip_files() { # MODE FILE...
	local mode=$1
	shift
	if [[ -n $strip_tool ]] && command -v "$strip_tool" >/dev/null; then
		"$strip_tool" "$mode" "$@"
	else
		log "no strip for $triple: $* left unstripped"
	fi
}

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d "${TMPDIR:-/tmp}/vmc-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
build_log=$stage/build.log
: >"$build_log"
# run CMD...: a build step whose output is kept for the compile count.
run() { "$@" 2> >(tee -a "$build_log" >&2); }

# Old artefacts of this version and target (and the platform-independent
# npm main package), so a failed step cannot leave a stale one behind.
rm -f "$out/vmcontainer-$version-$suffix.tar.gz" "$out/libvmcontainer-$version-$suffix.tar.gz" \
	"$out/vmcontainer-$version.tgz" "$out/SHA256SUMS"

# --- the CLI ---------------------------------------------------------------------
log "building the CLI ($triple)"
run cargo build --release -p vmcontainer-cli --bin vmcontainer "${target_args[@]}"
cli=$stage/vmcontainer-$version-$suffix
mkdir -p "$cli"
install -m 0755 "$bindir/vmcontainer" "$cli/vmcontainer"
install -m 0644 README.md "$cli/README.md"

# --- the C library ---------------------------------------------------------------
log "building libvmcontainer"
lib=$stage/libvmcontainer-$version-$suffix
header_arg=--header
((in_git)) && header_arg=--check-header
run bash bindings-c/build-lib.sh "$header_arg" --prefix "$lib" "${target_args[@]}" >/dev/null
strip_files --strip-debug "$lib/lib/libvmcontainer.a"
install -m 0644 bindings-c/README.md "$lib/README.md"

# --- the Node addon and packages ---------------------------------------------------
log "building the Node addon (napi build)"
(
	cd bindings-node
	rm -f vmcontainer.node
	run npx --yes -p @napi-rs/cli@3.10.12 napi build --release --no-const-enum --dts index.d.ts \
		"${target_args[@]}"
)
if ((in_git)) && ! git diff --exit-code -- bindings-node/index.d.ts >&2; then
	die "bindings-node/index.d.ts is out of date: commit the regenerated file"
fi
addon=$stage/vmcontainer.node
mv bindings-node/vmcontainer.node "$addon"
mapfile -t npm_files < <(node scripts/npm-pack.mjs --version "$version" --triple "$triple" \
	--addon "$addon" --out "$out")

# --- the Python wheel ------------------------------------------------------------
tools=$repo/.cache/package/tools
if ! "$tools/bin/python" -c 'import maturin, auditwheel' 2>/dev/null; then
	log "creating the tools venv ($tools)"
	rm -rf "$tools"
	python3 -m venv "$tools"
fi
"$tools/bin/pip" install -q --disable-pip-version-check "maturin>=1.9.4,<2" "auditwheel>=6.1"
log "building the wheel (maturin)"
wheels=$stage/wheels
run "$tools/bin/maturin" build --release --manifest-path bindings-python/Cargo.toml \
	--out "$wheels" "${target_args[@]}"
wheel=$(find "$wheels" -name "vmcontainer-$version-*.whl" | head -n1)
[[ -n $wheel ]] || die "maturin wrote no wheel for $version"
if [[ $triple == *-linux-* ]]; then
	# The tag maturin chose must be one auditwheel agrees with: no library
	# outside the manylinux set, no symbol newer than the tag's glibc.
	tag=$(basename "$wheel" .whl)
	tag=${tag##*-}
	show=$("$tools/bin/auditwheel" show "$wheel")
	grep -q "platform tag: *\"$tag\"" <<<"$show" || {
		echo "$show" >&2
		die "auditwheel does not confirm the wheel's tag $tag"
	}
	log "auditwheel: $tag confirmed"
fi
rm -f "$out"/vmcontainer-"$version"-*"${arch}".whl
mv "$wheel" "$out/"
wheel=$out/$(basename "$wheel")

# --- the tarballs ------------------------------------------------------------------
# Reproducible: sorted names, no owners, the commit's time.
epoch=${SOURCE_DATE_EPOCH:-$( ((in_git)) && git log -1 --format=%ct || date +%s)}
tarball() { # DIR -> $out/DIR.tar.gz
	local name
	name=$(basename "$1")
	tar -C "$(dirname "$1")" --sort=name --owner=0 --group=0 --numeric-owner \
		--mtime="@$epoch" -cf - "$name" | gzip -9n >"$out/$name.tar.gz"
	echo "$out/$name.tar.gz"
}
files=("$wheel" "${npm_files[@]}" "$(tarball "$lib")" "$(tarball "$cli")")

(cd "$out" && sha256sum -- *.whl *.tgz *.tar.gz >SHA256SUMS)

compiled=$(grep -c "Compiling vmcontainer v$version (" "$build_log" || true)
if ((compiled > 1)); then
	log "warning: the core was compiled $compiled times; the faces resolved different" \
		"dependency features (update workspace-hack/Cargo.toml)"
fi
for f in "${files[@]}"; do
	log "$(du -h "$f" | cut -f1)	$(basename "$f")"
	echo "$f"
done
log "done in $((SECONDS - started)) s ($triple, core compiled $compiled time(s))"
