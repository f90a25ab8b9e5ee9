#!/usr/bin/env bash
# Runs README.md's commands in order, as a new user would, in a fresh clone of this checkout's
# committed state (git clone, then tools/setup.sh as the first command does). Stops at the first
# command that fails. The commands are read from README.md's ```sh blocks, so the README cannot
# drift from what works. Skipped, with a line saying so:
#   bash tools/test.sh       the test suite itself (it needs root and takes long; CI runs it)
#   esm install-plugin ...   it writes into this user's GIMP/Krita profile; tests/test_plugin_install.py
#                            runs it into throwaway profiles
# The daemon gets a free loopback port and its own folders, so it meets no other daemon.
#   bash tools/readme_commands.sh [KEEP_DIR]    # KEEP_DIR: clone there and keep it (default: a temp dir)
set -euo pipefail
source_repo=$(cd "$(dirname "$0")/.." && pwd)
keep=${1:-}
if [ -n "$keep" ]; then work=$keep; mkdir -p "$work"; else work=$(mktemp -d); fi
clone="$work/esm"
rm -rf "$clone"
git clone --quiet "$source_repo" "$clone"
cd "$clone"

export XDG_RUNTIME_DIR="$work/run" XDG_STATE_HOME="$work/state" XDG_CONFIG_HOME="$work/config"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export ESM_ENDPOINT="tcp://127.0.0.1:$port"
stop_daemon() { [ -x .venv/bin/esm ] && .venv/bin/esm daemon stop >/dev/null 2>&1 || true; }
trap 'stop_daemon; [ -n "$keep" ] || rm -rf "$work"' EXIT

# Lines of ```sh blocks that are not comments, without their trailing "# ..." remarks.
mapfile -t commands < <(awk '/^```sh$/ {inside = 1; next} /^```$/ {inside = 0} inside && !/^[[:space:]]*#/ && NF' README.md |
                        sed -E 's/[[:space:]]+#[[:space:]].*$//')
[ ${#commands[@]} -gt 0 ] || { echo "no commands found in README.md" >&2; exit 1; }
for command in "${commands[@]}"; do
    case "$command" in
        "bash tools/test.sh"*) echo "skipped: $command (the test suite)"; continue ;;
        *"esm install-plugin"*) echo "skipped: $command (writes into this user's app profile)"; continue ;;
    esac
    echo "+ $command"
    started=$SECONDS
    if ! bash -c "$command"; then
        echo "FAILED: $command" >&2
        exit 1
    fi
    echo "  ok ($((SECONDS - started)) s)"
done
echo "all README commands succeeded in $clone"
