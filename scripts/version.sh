#!/usr/bin/env bash
# One version for every artefact: `version` under [workspace.package] in
# Cargo.toml. The crates inherit it (so `vmcontainer --version`, Python's
# `vmcontainer.__version__`, the wheel, `vmc_version()` and the pkg-config
# file follow it by themselves); a few files need it as a literal because
# their tools cannot read Cargo.toml, and this script keeps those in step:
#
#   bindings-node/package.json          "version" (npm; scripts/package.sh
#                                        also writes it into the packed
#                                        packages and pins the platform
#                                        packages to it)
#   bindings-c/src/lib.rs               VMC_VERSION_MAJOR/MINOR/PATCH
#   include/vmcontainer.h               the same macros (cbindgen output)
#   bindings-go/*.go                    a `const ...Version... = "X.Y.Z"`, if
#                                        the Go module ever declares one (its
#                                        Version() should return vmc_version())
#
#   scripts/version.sh               print the version
#   scripts/version.sh --check       fail, naming the file, if a copy differs
#   scripts/version.sh --set X.Y.Z   change it everywhere (and Cargo.lock,
#                                    when cargo is installed)
#
# Needs only bash, sed and awk: the package tests run it where there is no
# Rust toolchain.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "version.sh: $*" >&2; exit 1; }

workspace_version() {
	awk '/^\[workspace\.package\]/ { s = 1; next }
		/^\[/ { s = 0 }
		s && /^version[ \t]*=/ { sub(/^[^"]*"/, ""); sub(/".*/, ""); print; exit }' "$repo/Cargo.toml"
}

# The literal copies, one "FILE<TAB>VALUE" line each (VALUE empty when the
# file has no such literal).
copies() {
	local f
	f=bindings-node/package.json
	printf '%s\t%s\n' "$f" "$(sed -n 's/^  "version":[ ]*"\([^"]*\)".*/\1/p' "$repo/$f" | head -n1)"
	f=bindings-c/src/lib.rs
	printf '%s\t%s\n' "$f" "$(macro_version 's/^pub const VMC_VERSION_%s: u32 = \([0-9]*\);/\\1/p' "$repo/$f")"
	f=include/vmcontainer.h
	printf '%s\t%s\n' "$f" "$(macro_version 's/^#define VMC_VERSION_%s \([0-9]*\)$/\\1/p' "$repo/$f")"
	if [[ -d $repo/bindings-go ]]; then
		for f in "$repo"/bindings-go/*.go; do
			[[ -f $f ]] || continue
			local v
			v=$(sed -n 's/^[ \t]*\(const[ \t]\+\)\?[A-Za-z]*[Vv]ersion[A-Za-z]*[ \t]*=[ \t]*"\([0-9][^"]*\)".*/\2/p' "$f" | head -n1)
			[[ -z $v ]] || printf '%s\t%s\n' "${f#"$repo"/}" "$v"
		done
	fi
}

# macro_version SED_TEMPLATE FILE: MAJOR.MINOR.PATCH from three constants.
macro_version() {
	local part out=()
	for part in MAJOR MINOR PATCH; do
		# shellcheck disable=SC2059 # the template is ours
		out+=("$(sed -n "$(printf "$1" "$part")" "$2" | head -n1)")
	done
	local IFS=.
	echo "${out[*]}"
}

check() {
	local want=$1 file have bad=0
	while IFS=$'\t' read -r file have; do
		if [[ $have != "$want" ]]; then
			echo "version.sh: $file has version ${have:-<none>}, Cargo.toml has $want (run scripts/version.sh --set $want)" >&2
			bad=1
		fi
	done < <(copies)
	return $bad
}

set_version() {
	local new=$1 major minor patch part
	[[ $new =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] ||
		die "--set needs MAJOR.MINOR.PATCH (the C macros are numbers), not '$new'"
	major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]}
	sed -i "/^\[workspace\.package\]/,/^\[/ s/^version[ \t]*=.*/version = \"$new\"/" "$repo/Cargo.toml"
	sed -i "0,/^  \"version\":/ s/^  \"version\":[ ]*\"[^\"]*\"/  \"version\": \"$new\"/" "$repo/bindings-node/package.json"
	for part in MAJOR MINOR PATCH; do
		local n
		case $part in MAJOR) n=$major ;; MINOR) n=$minor ;; PATCH) n=$patch ;; esac
		sed -i "s/^pub const VMC_VERSION_$part: u32 = [0-9]*;/pub const VMC_VERSION_$part: u32 = $n;/" "$repo/bindings-c/src/lib.rs"
		sed -i "s/^#define VMC_VERSION_$part [0-9]*$/#define VMC_VERSION_$part $n/" "$repo/include/vmcontainer.h"
	done
	if command -v cargo >/dev/null; then
		(cd "$repo" && cargo update --workspace --quiet)
	else
		echo "version.sh: cargo not found; Cargo.lock updates on the next build" >&2
	fi
	check "$new"
}

version=$(workspace_version)
[[ -n $version ]] || die "no version under [workspace.package] in $repo/Cargo.toml"
case ${1:-} in
"") echo "$version" ;;
--check) check "$version" && echo "version.sh: every copy says $version" >&2 ;;
--set) set_version "${2:?--set needs a version}" ;;
*) die "usage: scripts/version.sh [--check | --set X.Y.Z]" ;;
esac
