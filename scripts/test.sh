#!/usr/bin/env bash
# The whole test suite on a fresh Debian/Ubuntu machine: installs Fieldline with its
# test extras, starts every real service the tests need (scripts/services.sh), checks
# lint and format, then runs pytest. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh test
scripts/services.sh up
export PATH="$ROOT/.venv/bin:$PATH"
echo "== ruff" >&2
ruff check .
ruff format --check .
echo "== pytest" >&2
# Bounded hypothesis examples in CI (see tests/conftest.py); 'ci' is the default profile.
export HYPOTHESIS_PROFILE="${HYPOTHESIS_PROFILE:-ci}"
exec python -m pytest "$@"
