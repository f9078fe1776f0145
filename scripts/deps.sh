#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, package and test
# vmcontainer: QEMU, the SSH client, the packages the test guest is built
# from, and what scripts/package.sh and the package tests use (Python with
# venv for maturin and the wheel, Node and npm, a C compiler, pkg-config,
# binutils), and the loopback OCI registry the registry tests of every face
# push to and pull from (docker-registry: the CNCF distribution registry)
# with htpasswd (apache2-utils) for its basic-auth users.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

pkgs=(qemu-system-x86 qemu-utils openssh-client curl git
	python3 python3-venv gcc libc6-dev pkg-config binutils
	docker-registry apache2-utils)
# Node from Debian only when the machine has none (CI images often bring
# a newer one).
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
mapfile -t guest_pkgs < <(grep -v '^\s*#' "$here/tests/guest/host-packages.txt" | sed '/^\s*$/d')
pkgs+=("${guest_pkgs[@]}")

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "deps: cargo (Rust) is required" >&2; exit 1; }
