#!/usr/bin/env bash
# Benchmark of the lean build: the CLI and the C library built from scratch
# (empty target directories, release) with the default features and with
# --no-default-features (no dev environment: no reqwest, TLS or YAML). It
# prints the clean build times, the number of crates compiled, and the
# sizes of the binaries. The default build is the baseline; ratios are
# lean / default.
#
#   bash bench/lean_bench.sh
#
# Takes two full release builds (several minutes each on a small machine).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
work=$(mktemp -d "${TMPDIR:-/tmp}/vmc-lean.XXXXXX")
trap 'rm -rf "$work"' EXIT

declare -A secs cpu crates cli so a
for variant in default lean; do
	flags=()
	[[ $variant == lean ]] && flags=(--no-default-features)
	export CARGO_TARGET_DIR=$work/target-$variant
	start=$(date +%s.%N)
	# CPU time too: wall time depends on what else the machine runs.
	/usr/bin/time -f '%U %S' -o "$work/time-$variant" \
		cargo build --release --locked -p vmcontainer-cli -p vmcontainer-c "${flags[@]}" 2>"$work/log-$variant"
	secs[$variant]=$(python3 -c 'import sys, time; print(f"{time.time() - float(sys.argv[1]):.0f}")' "$start")
	cpu[$variant]=$(awk '{printf "%.0f", $1 + $2}' "$work/time-$variant")
	crates[$variant]=$(grep -c '^ *Compiling ' "$work/log-$variant" || true)
	cli[$variant]=$(stat -c %s "$CARGO_TARGET_DIR/release/vmcontainer")
	so[$variant]=$(stat -c %s "$CARGO_TARGET_DIR/release/libvmcontainer.so")
	a[$variant]=$(stat -c %s "$CARGO_TARGET_DIR/release/libvmcontainer.a")
	rm -rf "$CARGO_TARGET_DIR"
done

human() { numfmt --to=iec --suffix=B --format='%.1f' "$1"; }
ratio() { python3 -c 'import sys; print(f"{float(sys.argv[1]) / float(sys.argv[2]):.2f}")' "$1" "$2"; }
echo "== clean release build of the CLI and the C library ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-26s %12s %12s %8s\n' "" default lean ratio
printf '%-26s %11ss %11ss %8s\n' "wall time" "${secs[default]}" "${secs[lean]}" "$(ratio "${secs[lean]}" "${secs[default]}")"
printf '%-26s %11ss %11ss %8s\n' "CPU time (user+sys)" "${cpu[default]}" "${cpu[lean]}" "$(ratio "${cpu[lean]}" "${cpu[default]}")"
printf '%-26s %12s %12s %8s\n' "crates compiled" "${crates[default]}" "${crates[lean]}" "$(ratio "${crates[lean]}" "${crates[default]}")"
printf '%-26s %12s %12s %8s\n' "vmcontainer (CLI)" "$(human "${cli[default]}")" "$(human "${cli[lean]}")" "$(ratio "${cli[lean]}" "${cli[default]}")"
printf '%-26s %12s %12s %8s\n' "libvmcontainer.so" "$(human "${so[default]}")" "$(human "${so[lean]}")" "$(ratio "${so[lean]}" "${so[default]}")"
printf '%-26s %12s %12s %8s\n' "libvmcontainer.a" "$(human "${a[default]}")" "$(human "${a[lean]}")" "$(ratio "${a[lean]}" "${a[default]}")"
