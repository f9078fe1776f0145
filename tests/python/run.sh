#!/usr/bin/env bash
# Tests of the Python module, self-contained:
#   1. takes the wheel from dist/ (scripts/package.sh builds it with
#      maturin; scripts/test.sh builds dist/ once for every suite),
#   2. installs it into a fresh virtual environment, in an environment
#      without Rust (tests/dist-env.sh: no cargo/rustc on PATH, empty HOME),
#   3. runs the pytest suite from that environment (it boots the test guest),
#      and fails if anything called cargo or rustc.
# Exits non-zero on any failure, including "no tests ran".
#
#   tests/python/run.sh [PYTEST ARGS...]
#
# Environment: PYTHON (default python3), VMCONTAINER_DIST (default: dist/,
# refreshed by scripts/package.sh), VMCONTAINER_TEST_GUEST (default: built
# or taken from cache by tests/guest/build.sh).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../dist-env.sh
source "$repo/tests/dist-env.sh"
python=${PYTHON:-python3}
work=$repo/.cache/python
venv=$work/venv

log() { echo "python-tests: $*" >&2; }

"$python" -c 'import sys; assert sys.version_info >= (3, 9), sys.version' ||
	{ log "Python >= 3.9 is required ($python)"; exit 1; }
"$python" -c 'import venv, ensurepip' 2>/dev/null || {
	log "installing python3-venv"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
}
# The registry tests push to and pull from a loopback docker-registry.
command -v docker-registry >/dev/null || {
	log "installing docker-registry"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
}
# The interpreter itself, not a shim that may need the user's HOME.
python=$("$python" -c 'import sys; print(sys.executable)')
mkdir -p "$work"

# --- the wheel from dist/, in a fresh environment without Rust ---------------------
dist=$(dist_dir)
version=$(bash "$repo/scripts/version.sh")
wheel=$(dist_file "$dist" "vmcontainer-$version-cp39-abi3-*.whl")
log "installing $(basename "$wheel")"
clean_env_setup "$work/env"
rm -rf "$venv"
clean_env "$python" -m venv "$venv"
clean_env "$venv/bin/pip" install -q "$wheel" "pytest>=7" "mypy>=1.10"

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
clean_env env TMPDIR="$scratch" "$venv/bin/python" -m pytest -v -p no:cacheprovider \
	--basetemp="$scratch/pytest" "$@"
rc=$?
set -e
clean_env_check
if ((rc == 5)); then
	log "pytest collected no tests: that is a failure"
	exit 1
fi
exit "$rc"
