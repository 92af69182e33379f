#!/usr/bin/env bash
# Installs everything the platform needs into .venv (and the Go servers into the cache), idempotently.
# Heavy builds live in VOICEAGENT_CACHE_DIR (default ~/.cache/voiceagent), keyed by version:
#   bin/ferretdb-<ver>/, bin/minio-<ver>/   Go servers built from the module proxy
#   wheels/                                   llama-cpp-python compiled once (about 5 minutes on 2 cores)
#   npm/                                      npm's download cache for the UI
# Usage: scripts/bootstrap.sh [--dev]
set -euo pipefail
cd "$(dirname "$0")/.."
DEV=0; [[ "${1:-}" == "--dev" ]] && DEV=1
CACHE="${VOICEAGENT_CACHE_DIR:-$HOME/.cache/voiceagent}"
LLAMA_VERSION=0.3.36
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
mkdir -p "$CACHE/wheels"
log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*"; }

# The Go servers build in the background (stdlib-only Python) while pip works.
python3 -c "import sys; sys.path.insert(0, '.'); from voicectl.binaries import FERRETDB, MINIO; FERRETDB.ensure(); MINIO.ensure()" \
  > "$CACHE/go-build.log" 2>&1 &
GO_BUILD_PID=$!

if [[ ! -x .venv/bin/python ]]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
  .venv/bin/pip install -q -U pip wheel setuptools
fi

if ! ls "$CACHE"/wheels/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
  log "compiling llama-cpp-python $LLAMA_VERSION once into $CACHE/wheels (about 5 minutes)"
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" .venv/bin/pip wheel -q --no-deps "llama-cpp-python==$LLAMA_VERSION" -w "$CACHE/wheels"
fi

EXTRAS="local"; [[ $DEV == 1 ]] && EXTRAS="local,dev"
STAMP=".venv/.installed-$(cat pyproject.toml | sha256sum | cut -c1-16)-$EXTRAS"
if [[ ! -f "$STAMP" ]]; then
  log "installing the platform into .venv (extras: $EXTRAS)"
  .venv/bin/pip install -q --find-links "$CACHE/wheels" -e ".[$EXTRAS]"
  rm -f .venv/.installed-*; touch "$STAMP"
fi

log "waiting for the FerretDB and MinIO builds"
if ! wait $GO_BUILD_PID; then cat "$CACHE/go-build.log"; log "building FerretDB/MinIO failed (log above)"; exit 1; fi

if [[ -f frontend/package.json ]]; then
  if [[ ! -d frontend/node_modules || frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]]; then
    # Not `npm ci`: the registry mirror here 404s other platforms' optional packages (e.g. @rollup/rollup-darwin-x64),
    # so npm leaves them out of the lock and `npm ci` then rejects its own lock as out of sync.
    # `install --no-save` follows the lock and never rewrites it.
    log "installing UI dependencies (npm install --no-save)"
    (cd frontend && npm install --no-save --no-audit --no-fund --cache "$CACHE/npm" --prefer-offline)
  fi
  if [[ ! -f frontend/dist/index.html || -n "$(find frontend/src frontend/index.html -newer frontend/dist/index.html 2>/dev/null | head -1)" ]]; then
    log "building the UI"
    (cd frontend && npm run -s build)
  fi
fi
log "ready"
