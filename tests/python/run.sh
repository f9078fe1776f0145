#!/usr/bin/env bash
# Tests of the Python module, self-contained:
#   1. installs what a fresh machine lacks (maturin, pytest, mypy: in venvs),
#   2. lints the binding crate (rustfmt, clippy -D warnings),
#   3. builds the wheel through pip (the PEP 517 path `pip install` takes),
#   4. installs it into a fresh virtual environment,
#   5. runs the pytest suite from that environment (it boots the test guest).
# Exits non-zero on any failure, including "no tests ran".
#
#   tests/python/run.sh [PYTEST ARGS...]
#
# Environment: PYTHON (default python3), CARGO_TARGET_DIR (default the
# repository's target/, shared with the other crates), VMCONTAINER_TEST_GUEST
# (default: built or taken from cache by tests/guest/build.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
work=$repo/.cache/python
tools=$work/tools
venv=$work/venv
dist=$work/dist
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}

log() { echo "python-tests: $*" >&2; }

"$python" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' ||
	{ log "Python >= 3.9 is required ($python)"; exit 1; }
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
	log "installing python3-venv"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
}
mkdir -p "$work"

# --- build tools (cached between runs) ------------------------------------------
if ! "$tools/bin/python" -c 'import maturin' 2>/dev/null; then
	log "creating the tools venv"
	rm -rf "$tools"
	"$python" -m venv "$tools"
fi
"$tools/bin/pip" install -q --disable-pip-version-check "maturin>=1.9.4,<2"

# --- lint the binding crate -------------------------------------------------------
log "cargo fmt --check / clippy (bindings-python)"
cargo fmt --manifest-path "$repo/bindings-python/Cargo.toml" -- --check
PYO3_PYTHON=$tools/bin/python cargo clippy --quiet \
	--manifest-path "$repo/bindings-python/Cargo.toml" --all-targets -- -D warnings

# --- wheel -----------------------------------------------------------------------
log "building the wheel"
rm -rf "$dist"
started=$SECONDS
PATH=$tools/bin:$PATH "$tools/bin/pip" wheel -q --disable-pip-version-check --no-build-isolation --no-deps \
	-w "$dist" "$repo/bindings-python"
wheel=$(find "$dist" -name 'vmcontainer-*.whl' | head -n1)
[[ -n $wheel ]] || { log "no wheel was built"; exit 1; }
log "built $(basename "$wheel") in $((SECONDS - started)) s"

# --- fresh environment with the wheel -------------------------------------------
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$wheel" "pytest>=7" "mypy>=1.10"

# --- the test guest ----------------------------------------------------------------
if [[ -z ${VMCONTAINER_TEST_GUEST:-} ]]; then
	VMCONTAINER_TEST_GUEST=$(bash "$repo/tests/guest/build.sh" | tail -n1)
fi
export VMCONTAINER_TEST_GUEST

# Every VMCONTAINER_HOME the tests make lives under this directory, so a VM
# left behind by a crashed run can be found and stopped.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vmcpy-run.XXXXXX")
cleanup() {
	local pid
	for pid in $(pgrep -f -- "$scratch" || true); do
		if [[ $(cat "/proc/$pid/comm" 2>/dev/null) == qemu* ]]; then
			log "stopping leftover VM process $pid"
			kill "$pid" 2>/dev/null || true
		fi
	done
	rm -rf "$scratch"
}
trap cleanup EXIT

log "pytest (from $venv)"
cd "$here"
set +e
TMPDIR=$scratch "$venv/bin/python" -m pytest -v -p no:cacheprovider \
	--basetemp="$scratch/pytest" "$@"
rc=$?
set -e
if ((rc == 5)); then
	log "pytest collected no tests: that is a failure"
	exit 1
fi
exit "$rc"
