#!/usr/bin/env bash
# Run the test suite from the repository root: scripts/setup.sh, then pytest (in the project's .venv) with
# any arguments given. The exit status is pytest's (5 when no test ran is kept as a failure).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
exec "${ASYNCSYNC_VENV:-.venv}/bin/python" -m pytest "$@"
