#!/usr/bin/env bash
# Installs Fieldline into .venv and runs `fieldline demo`: every service on the embedded
# defaults (SQLite, in-process MQTT broker and queue, local mailbox) plus virtual devices.
# Extra arguments go to the command (see `fieldline demo --help`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
exec .venv/bin/fieldline demo "$@"
