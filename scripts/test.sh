#!/usr/bin/env bash
# The test suite: formatting, lints, unit tests, the release artefacts, and
# the real-VM tests that boot the test guest under QEMU. Everything here
# must pass; nothing skips.
#
# Each face is compiled once: `cargo test` builds the debug tests, then
# scripts/package.sh builds every release artefact into dist/ (one release
# build of the core, shared by the CLI, the C library, the Node addon and
# the wheel), and the suites of the faces install and test those artefacts,
# without Rust, as a user would.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh

section() { echo "== $1 ($(date +%T))"; }

section "cargo fmt --check"
cargo fmt --all -- --check
section "versions"
bash scripts/version.sh --check
section "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
section "cargo clippy --no-default-features (lean build: no devenv)"
cargo clippy --workspace --all-targets --no-default-features -- -D warnings
section "test guest"
guest=$(bash tests/guest/build.sh | tail -n1)
export VMCONTAINER_TEST_GUEST="$guest"
section "cargo test"
# Two test threads: the VM tests share a limit of two VMs at once anyway.
cargo test --workspace -- --test-threads=2
section "scripts/package.sh"
bash scripts/package.sh
export VMCONTAINER_DIST=$PWD/dist
# The C library as users get it, unpacked once, for suites that take a
# pkg-config directory (bindings-go; tests/c unpacks its own copy).
rm -rf .cache/dist-lib
mkdir -p .cache/dist-lib
tar -xzf dist/libvmcontainer-"$(bash scripts/version.sh)"-linux-"$(uname -m)".tar.gz -C .cache/dist-lib \
	--strip-components=1
export VMC_LIB_PCDIR=$PWD/.cache/dist-lib/lib/pkgconfig
# One library build (the packaged one) for the C and Go suites.
for suite in tests/package tests/c bindings-go tests/python tests/node; do
	if [[ -f $suite/run.sh ]]; then
		section "$suite"
		t0=$SECONDS
		bash "$suite/run.sh"
		echo "== $suite passed in $((SECONDS - t0))s"
	fi
done
section "all tests passed"
