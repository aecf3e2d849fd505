#!/usr/bin/env bash
# Regenerate requirements.lock (exact pins of every runtime and test dependency, transitive ones
# included) from pyproject.toml, with pip-tools in a throw-away virtual environment. Run after changing
# dependencies in pyproject.toml; scripts/setup.sh installs from the lock.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
"${PYTHON:-python3}" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check pip-tools
"$tools/venv/bin/pip-compile" --quiet --strip-extras --extra test --no-emit-index-url --no-emit-find-links \
    --output-file requirements.lock pyproject.toml
