#!/usr/bin/env bash
# End to end on this machine: build the CLI and the test guest, boot the
# guest as a container, exec in it, reach its HTTP port, show its logs, stop
# and remove it. Uses a throwaway VMCONTAINER_HOME.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/deps.sh
cargo build -q -p vmcontainer-cli
vmc=$PWD/target/debug/vmcontainer
guest=$(bash tests/guest/build.sh | tail -n1)
export VMCONTAINER_HOME
VMCONTAINER_HOME=$(mktemp -d /tmp/vmc-demo.XXXXXX)
share=$(mktemp -d)
echo "hello from the host" >"$share/hello.txt"
trap '"$vmc" rm -f demo >/dev/null 2>&1 || true; rm -rf "$VMCONTAINER_HOME" "$share"' EXIT

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
step "$vmc" run -d --name demo -p 18080:80 -v "$share:/mnt/data" \
	--ssh-key "$guest/id_ed25519" "$guest/vmtest-kernel"
step "$vmc" ps
step "$vmc" wait demo
step "$vmc" exec demo uname -a
step "$vmc" exec demo cat /mnt/data/hello.txt
step curl -s http://127.0.0.1:18080/
step "$vmc" logs demo | tail -n 5
step "$vmc" stop demo
step "$vmc" ps -a
