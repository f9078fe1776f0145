#!/usr/bin/env bash
# Benchmark of the release artefacts: their sizes, and how long installing
# the wheel and the npm packages from dist/ takes against building the same
# face from source (the baseline a user without prebuilt packages has).
#
#   bash bench/package_bench.sh            cold source builds (empty target dirs)
#   bash bench/package_bench.sh --warm     source builds reuse ./target (a
#                                          developer's incremental case)
#
# Runs scripts/package.sh first (incremental) unless VMCONTAINER_DIST points
# at a dist/. Installs from dist/ run without Rust (tests/dist-env.sh); the
# source builds need cargo. Figures go to stdout.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../tests/dist-env.sh
source "$repo/tests/dist-env.sh"
warm=0
[[ ${1:-} == --warm ]] && warm=1

dist=$(dist_dir)
version=$(bash "$repo/scripts/version.sh")
python=$(python3 -c 'import sys; print(sys.executable)')
work=$(mktemp -d "${TMPDIR:-/tmp}/vmc-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
clean_env_setup "$work/env"

now() { date +%s.%N; }
elapsed() { python3 -c 'import sys, time; print(time.time() - float(sys.argv[1]))' "$1"; }
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.0f}")' "$1" "$2"; }
human() { numfmt --to=iec --suffix=B --format='%.1f' "$1"; }

echo "== artefacts ($version, $(basename "$dist"))"
printf '%-56s %10s %12s\n' file size unpacked
for f in "$dist"/*"$version"*; do
	case $f in
	*.tar.gz) unpacked=$(tar -tvzf "$f" | awk '{s += $3} END {print s}') ;;
	*.tgz) unpacked=$(tar -tvzf "$f" | awk '{s += $3} END {print s}') ;;
	*.whl) unpacked=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$f") ;;
	*) continue ;;
	esac
	printf '%-56s %10s %12s\n' "$(basename "$f")" "$(human "$(stat -c %s "$f")")" "$(human "$unpacked")"
done

target_for() { # NAME: a cold target dir, or the repository's
	if ((warm)); then echo "${CARGO_TARGET_DIR:-$repo/target}"; else echo "$work/target-$1"; fi
}

echo
echo "== Python: pip install"
wheel=$(dist_file "$dist" "vmcontainer-$version-cp39-abi3-*.whl")
clean_env "$python" -m venv "$work/venv-dist"
t=$(now)
clean_env "$work/venv-dist/bin/pip" install -q --no-index "$wheel"
dist_py=$(elapsed "$t")
"$python" -m venv "$work/venv-src"
# The source build as pip runs it (PEP 517, maturin from the index in an
# isolated build environment).
t=$(now)
CARGO_TARGET_DIR=$(target_for python) "$work/venv-src/bin/pip" install -q "$repo/bindings-python"
src_py=$(elapsed "$t")
printf 'from dist/ (wheel, no Rust)   %8.1f s\n' "$dist_py"
printf 'from source (%s)           %8.1f s   ratio %sx\n' "$( ((warm)) && echo warm || echo cold)" \
	"$src_py" "$(ratio "$src_py" "$dist_py")"

echo
echo "== Node: npm install"
platform=linux-x64-gnu
[[ $(uname -m) == aarch64 ]] && platform=linux-arm64-gnu
mkdir -p "$work/npm-dist" "$work/npm-src"
for d in npm-dist npm-src; do
	printf '{ "name": "bench-%s", "version": "1.0.0", "private": true }\n' "$d" >"$work/$d/package.json"
done
t=$(now)
(cd "$work/npm-dist" && clean_env npm install -s --no-audit --no-fund \
	"$(dist_file "$dist" "vmcontainer-$platform-$version.tgz")" "$(dist_file "$dist" "vmcontainer-$version.tgz")")
dist_js=$(elapsed "$t")
# From source: build the addon (napi, release) in a copy of the checkout,
# then install that directory.
git -C "$repo" ls-files -z | (cd "$repo" && tar --null -T - -cf -) |
	(mkdir -p "$work/checkout" && tar -C "$work/checkout" -xf -)
t=$(now)
(cd "$work/checkout/bindings-node" && CARGO_TARGET_DIR=$(target_for node) npm run -s build >/dev/null 2>&1)
(cd "$work/npm-src" && npm install -s --no-audit --no-fund "$work/checkout/bindings-node")
src_js=$(elapsed "$t")
printf 'from dist/ (tarballs, no Rust) %7.1f s\n' "$dist_js"
printf 'from source (%s)            %7.1f s   ratio %sx\n' "$( ((warm)) && echo warm || echo cold)" \
	"$src_js" "$(ratio "$src_js" "$dist_js")"
clean_env_check
