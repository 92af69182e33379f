#!/usr/bin/env bash
# Regenerates requirements.lock from pyproject.toml: every Python package that bootstrap installs, pinned with its
# hashes (pip installs it with --require-hashes, so a changed or substituted file on the index fails the install).
# Run it after changing dependencies in pyproject.toml, and commit both files. llama-cpp-python is left out: it is
# compiled locally, portably (scripts/bootstrap.sh), and its version is pinned in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${VOICEAGENT_CACHE_DIR:-$HOME/.cache/voiceagent}"
UV_VERSION=0.13.8
UV="$CACHE/tools/uv-$UV_VERSION/bin/uv"
if [[ ! -x "$UV" ]]; then
  python3 -m venv "$CACHE/tools/uv-$UV_VERSION"
  "$CACHE/tools/uv-$UV_VERSION/bin/pip" install -q "uv==$UV_VERSION"
fi
"$UV" pip compile pyproject.toml --extra local --extra dev --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --generate-hashes --no-emit-package llama-cpp-python \
  --custom-compile-command "scripts/lock.sh" -o requirements.lock
