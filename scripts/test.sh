#!/usr/bin/env bash
# The test suite: formatting, lints, unit tests, and the real-VM tests that
# boot the test guest under QEMU. Everything here must pass; nothing skips.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== test guest"
guest=$(bash tests/guest/build.sh | tail -n1)
export VMCONTAINER_TEST_GUEST="$guest"
echo "== cargo test"
# Two test threads: the VM tests share a limit of two VMs at once anyway.
cargo test --workspace -- --test-threads=2
echo "== libvmcontainer (one build for the C and Go suites; header checked)"
VMC_LIB_PCDIR=$(bash bindings-c/build-lib.sh --check-header | tail -n1)
export VMC_LIB_PCDIR
for suite in tests/c bindings-go tests/python tests/node; do
	if [[ -f $suite/run.sh ]]; then
		echo "== $suite"
		t0=$SECONDS
		bash "$suite/run.sh"
		echo "== $suite passed in $((SECONDS - t0))s"
	fi
done
echo "== all tests passed"
