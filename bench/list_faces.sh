#!/usr/bin/env bash
# `list()` of 1,000 containers from Go, Python and Node, each against the
# same call in Rust (core/examples/list_bench.rs) in the same run, ROUNDS
# times (default 3), with the load average before each round: the machine
# is shared, so compare medians of rounds.
#
#   bash bench/list_faces.sh
#
# Needs the Python venv and the Node module that tests/python/run.sh and
# tests/node/run.sh set up; builds the release libvmcontainer.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
rounds=${ROUNDS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$repo/target}
pcdir=$(bash bindings-c/build-lib.sh 2>/dev/null | tail -n1)
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir vmcontainer)
go=$(command -v go || echo /usr/local/go/bin/go)
for round in $(seq "$rounds"); do
	echo "== round $round, load: $(cut -d' ' -f1-3 /proc/loadavg)"
	(cd bindings-go && PKG_CONFIG_PATH=$pcdir CGO_LDFLAGS="-Wl,-rpath,$libdir" GOFLAGS=-mod=mod \
		GOTOOLCHAIN=local GOPROXY=off "$go" run ./cmd/listbench -repo "$repo")
	.cache/python/venv/bin/python tests/python/bench.py | grep -E 'Rust|Python|ratio'
	(cd tests/node && node bench.mjs)
done
