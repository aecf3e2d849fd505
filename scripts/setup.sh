#!/usr/bin/env bash
# Prepare a machine for the test suite (CI runs this through scripts/test.sh).
#  1. Debian packages docker-registry (CNCF distribution, the real registry the fixtures start), skopeo
#     (reference client) and apache2-utils (htpasswd), installed only when a tool is missing.
#  2. This package in editable mode with its test extras.
# Uses sudo for apt-get only when not already root. Idempotent; exits non-zero on any failure.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

missing=()
for tool in docker-registry skopeo; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup.sh: installing Debian packages (missing: ${missing[*]})" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        docker-registry skopeo apache2-utils
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'
