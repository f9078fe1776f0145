#!/usr/bin/env bash
# The Node module's checks, self-contained:
#   1. `npm install` here, which installs ../../bindings-node like
#      `npm install ./bindings-node` and so builds the native module from
#      scratch (the old binary is deleted first);
#   2. the committed index.d.ts must equal the generated one;
#   3. the TypeScript example type-checks with `tsc --noEmit --strict`;
#   4. `node --test`: the API without a VM, devenv (detection, install from
#      a loopback CDN; no VM), then the real-VM lifecycle.
# Exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$here"

for tool in node npm cargo; do
	command -v "$tool" >/dev/null || { echo "node tests: $tool is not installed" >&2; exit 1; }
done

echo "node tests: installing bindings-node (builds the native module)" >&2
rm -f "$repo/bindings-node/vmcontainer.node"
rm -rf node_modules
npm install --no-audit --no-fund --foreground-scripts
test -f "$repo/bindings-node/vmcontainer.node" || {
	echo "node tests: npm install did not build bindings-node/vmcontainer.node" >&2
	exit 1
}

if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
	git -C "$repo" ls-files --error-unmatch bindings-node/index.d.ts >/dev/null 2>&1; then
	git -C "$repo" diff --exit-code -- bindings-node/index.d.ts || {
		echo "node tests: bindings-node/index.d.ts is stale; commit the regenerated file" >&2
		exit 1
	}
fi

echo "node tests: type-checking example.ts" >&2
npx tsc --noEmit --strict -p tsconfig.json

echo "node tests: node --test" >&2
node --test --test-concurrency=1 api.test.mjs parity.test.mjs devenv.test.mjs vm.test.mjs
