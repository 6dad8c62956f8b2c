#!/usr/bin/env bash
# Creates .venv and installs Fieldline into it (with the test extras when asked).
# Usage: scripts/bootstrap.sh [test]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "bootstrap: installing python3 and python3-venv from apt" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv python3-pip
fi
[ -x .venv/bin/python ] || python3 -m venv .venv

# pip runs only when pyproject.toml changed since the last install (the install is editable,
# so code changes need none). A test install also satisfies a plain one.
mode="${1:-app}"
stamp=.venv/fieldline-install.stamp
hash="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && { grep -qxF "$hash test" "$stamp" || grep -qxF "$hash $mode" "$stamp"; }; then
    exit 0
fi
echo "bootstrap: installing Fieldline into .venv (first run or pyproject.toml changed; about a minute)" >&2
extras=""
[ "$mode" = test ] && extras="[test]"
log=.venv/fieldline-install.log
if ! { .venv/bin/python -m pip install -q --upgrade pip &&
       .venv/bin/python -m pip install -q -e ".$extras"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "bootstrap: pip failed (output above, also in $log); fix the cause and run the command again" >&2
    exit 1
fi
echo "$hash $mode" >"$stamp"
