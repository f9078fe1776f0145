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
for suite in c go python node; do
	if [[ -f tests/$suite/run.sh ]]; then
		echo "== tests/$suite"
		bash "tests/$suite/run.sh"
	fi
done
echo "== all tests passed"
