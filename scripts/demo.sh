#!/usr/bin/env bash
# Fresh machine -> a real sync: install what is needed (scripts/setup.sh, into .venv), start two local
# registries, seed sample images, sync them with asyncsync and show the result (scripts/demo.py).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/setup.sh
exec "${ASYNCSYNC_VENV:-.venv}/bin/python" -m scripts.demo "$@"
