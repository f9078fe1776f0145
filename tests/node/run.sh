#!/usr/bin/env bash
# The Node module's checks, against the packages a user installs:
#   1. takes the npm tarballs from dist/ (scripts/package.sh builds the addon
#      with napi and packs `vmcontainer` plus `@vmcontainer/<platform>`;
#      scripts/test.sh builds dist/ once for every suite, and package.sh
#      fails if the committed index.d.ts is stale);
#   2. installs both here, with the test tools (typescript, @types/node), in
#      an environment without Rust (tests/dist-env.sh: no cargo/rustc on
#      PATH, empty HOME): no build step may run;
#   3. the TypeScript example type-checks with `tsc --noEmit --strict`
#      against the installed typings;
#   4. `node --test`: the API without a VM, devenv (detection, install from
#      a loopback CDN; no VM), push/pull/export against a loopback
#      docker-registry (no VM), then the real-VM lifecycle;
#   5. fails if anything called cargo or rustc.
# Exits non-zero on any failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=../dist-env.sh
source "$repo/tests/dist-env.sh"
cd "$here"

for tool in node npm docker-registry; do
	command -v "$tool" >/dev/null || { echo "node tests: $tool is not installed" >&2; exit 1; }
done
case $(uname -m) in
x86_64) platform=linux-x64-gnu ;;
aarch64) platform=linux-arm64-gnu ;;
*) echo "node tests: no npm platform name for $(uname -m)" >&2; exit 1 ;;
esac

dist=$(dist_dir)
version=$(bash "$repo/scripts/version.sh")
main_tgz=$(dist_file "$dist" "vmcontainer-$version.tgz")
plat_tgz=$(dist_file "$dist" "vmcontainer-$platform-$version.tgz")
clean_env_setup "$repo/.cache/node-env"

echo "node tests: installing $(basename "$plat_tgz") and $(basename "$main_tgz")" >&2
rm -rf node_modules package-lock.json
# --no-save: package.json keeps naming no tarball (their names carry the
# version); the platform package satisfies the main one's optional
# dependency, so npm fetches nothing for either.
clean_env npm install --no-save --no-audit --no-fund --foreground-scripts "$plat_tgz" "$main_tgz"
test -f "node_modules/@vmcontainer/$platform/vmcontainer.$platform.node" || {
	echo "node tests: @vmcontainer/$platform was not installed" >&2
	exit 1
}

echo "node tests: type-checking example.ts" >&2
clean_env ./node_modules/.bin/tsc --noEmit --strict -p tsconfig.json

echo "node tests: node --test" >&2
clean_env node --test --test-concurrency=1 api.test.mjs parity.test.mjs devenv.test.mjs registry.test.mjs vm.test.mjs
clean_env_check
