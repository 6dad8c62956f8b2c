#!/usr/bin/env bash
# Installs Fieldline into .venv and starts it on the embedded defaults (SQLite,
# in-process MQTT broker and queue, local mailbox). Extra arguments go to the command.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
exec .venv/bin/fieldline up "$@"
