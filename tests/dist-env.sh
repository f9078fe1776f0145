# shellcheck shell=bash
# Sourced by the suites that test the packaged artefacts (tests/package, c,
# go, python, node): where dist/ is, and a clean environment to install and
# run them in, like a user's machine without Rust.
#
#   dist_dir                  prints the dist/ directory. scripts/test.sh
#                             builds it once and exports VMCONTAINER_DIST;
#                             a suite run on its own runs scripts/package.sh
#                             (incremental) so it never tests stale files.
#   dist_file DIST GLOB       the one artefact matching GLOB (fails on none
#                             or several)
#   clean_env_setup DIR       makes DIR/home (an empty HOME) and a PATH
#                             without any directory that holds cargo, rustc
#                             or rustup, led by a tripwire directory whose
#                             cargo/rustc/rustup record every call and fail
#   clean_env CMD...          runs CMD there (caches for pip, npm and Go
#                             under .cache/ so nothing is downloaded twice)
#   clean_env_check           fails if anything called the tripwire (but
#                             pip's `rustc --version` probe)
#
# Expects $repo (the repository root) to be set by the caller.

dist_dir() {
	if [[ -n ${VMCONTAINER_DIST:-} ]]; then
		echo "$VMCONTAINER_DIST"
		return
	fi
	echo "dist-env: building the artefacts (scripts/package.sh)" >&2
	bash "$repo/scripts/package.sh" >/dev/null
	echo "$repo/dist"
}

dist_file() { # DIST GLOB
	local matches
	mapfile -t matches < <(compgen -G "$1/$2" || true)
	if ((${#matches[@]} != 1)); then
		echo "dist-env: expected one $2 in $1, found ${#matches[@]}: ${matches[*]}" >&2
		return 1
	fi
	echo "${matches[0]}"
}

clean_env_setup() { # DIR
	local dir=$1 entry tool
	CLEAN_HOME=$dir/home
	CLEAN_TRIPWIRE=$dir/tripwire
	CLEAN_TRIPWIRE_LOG=$dir/tripwire.log
	rm -rf "$CLEAN_HOME"
	mkdir -p "$CLEAN_HOME" "$CLEAN_TRIPWIRE"
	: >"$CLEAN_TRIPWIRE_LOG"
	for tool in cargo rustc rustup; do
		cat >"$CLEAN_TRIPWIRE/$tool" <<EOF
#!/bin/sh
echo "$tool \$* (called by: \$(tr '\\0\\n' '  ' </proc/\$PPID/cmdline))" >>"$CLEAN_TRIPWIRE_LOG"
echo "dist-env: $tool was called in the clean environment: \$0 \$*" >&2
exit 127
EOF
		chmod +x "$CLEAN_TRIPWIRE/$tool"
	done
	CLEAN_PATH=$CLEAN_TRIPWIRE
	local IFS=:
	for entry in $PATH; do
		[[ -n $entry && -d $entry ]] || continue
		[[ -e $entry/cargo || -e $entry/rustc || -e $entry/rustup ]] && continue
		CLEAN_PATH+=:$entry
	done
	export CLEAN_HOME CLEAN_PATH CLEAN_TRIPWIRE_LOG
}

clean_env() { # CMD...
	env -u CARGO_HOME -u RUSTUP_HOME -u CARGO_TARGET_DIR -u RUSTC -u RUSTFLAGS -u CARGO \
		-u PYO3_PYTHON -u VIRTUAL_ENV \
		HOME="$CLEAN_HOME" PATH="$CLEAN_PATH" \
		PIP_CACHE_DIR="$repo/.cache/pip" PIP_DISABLE_PIP_VERSION_CHECK=1 \
		npm_config_cache="$repo/.cache/npm" npm_config_update_notifier=false \
		npm_config_audit=false npm_config_fund=false \
		GOCACHE="$repo/.cache/go/build" GOMODCACHE="$repo/.cache/go/mod" GOPATH="$repo/.cache/go/path" \
		"$@"
}

clean_env_check() {
	# pip asks `rustc --version` for its User-Agent on every install (it
	# then finds no Rust, as on a user's machine); that is not a build.
	local calls
	calls=$(grep -v '^rustc --version (called by: .*pip' "$CLEAN_TRIPWIRE_LOG" || true)
	if [[ -n $calls ]]; then
		echo "dist-env: the Rust toolchain was called while installing or running the artefacts:" >&2
		echo "$calls" >&2
		return 1
	fi
}
