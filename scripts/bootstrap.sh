#!/usr/bin/env bash
# Installs everything the platform needs into .venv (and the Go servers into the cache), idempotently.
# Heavy builds live in VOICEAGENT_CACHE_DIR (default ~/.cache/voiceagent), keyed by version:
#   bin/ferretdb-<ver>/, bin/minio-<ver>/   Go servers built from the module proxy
#   wheels/llama-cpp-python-<ver>-<flags>/    llama-cpp-python compiled once, portably (about 5 minutes on 2 cores)
#   npm/                                      npm's download cache for the UI
# Usage: scripts/bootstrap.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${VOICEAGENT_CACHE_DIR:-$HOME/.cache/voiceagent}"
# The version pinned in pyproject.toml.
LLAMA_VERSION="$(grep -o 'llama-cpp-python\[server\]==[0-9.]*' pyproject.toml | cut -d= -f3)"
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

# llama.cpp is compiled portably (scripts/llama-cmake-args.sh says how and why). The wheel's cache folder is keyed by
# the version and a hash of the flags, so it never serves a build made with other flags. --no-cache-dir: pip's own
# wheel cache would otherwise hand back an older (native) wheel.
LLAMA_CMAKE_ARGS="$(bash scripts/llama-cmake-args.sh)"
LLAMA_KEY="$LLAMA_VERSION-$(printf '%s' "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
LLAMA_WHEELS="$CACHE/wheels/llama-cpp-python-$LLAMA_KEY"
if ! ls "$LLAMA_WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl >/dev/null 2>&1; then
  log "compiling llama-cpp-python $LLAMA_VERSION once into $LLAMA_WHEELS (about 5 minutes)"
  log "llama.cpp CMAKE_ARGS: $LLAMA_CMAKE_ARGS"
  rm -rf "$LLAMA_WHEELS.tmp"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    .venv/bin/pip wheel -q --no-deps --no-cache-dir "llama-cpp-python==$LLAMA_VERSION" -w "$LLAMA_WHEELS.tmp"
  printf '%s\n' "$LLAMA_CMAKE_ARGS" > "$LLAMA_WHEELS.tmp/CMAKE_ARGS"
  mv "$LLAMA_WHEELS.tmp" "$LLAMA_WHEELS"
else
  log "llama-cpp-python $LLAMA_VERSION from the cache, built with: $(cat "$LLAMA_WHEELS/CMAKE_ARGS")"
fi

# Every Python package is pinned with its hashes in requirements-dev.lock (the runtime set plus the test tools;
# scripts/lock.sh regenerates both locks); the project
# itself is installed editable without resolving anything, and `pip check` catches a lock that is older than
# pyproject.toml's dependencies.
STAMP=".venv/.installed-$(cat pyproject.toml requirements-dev.lock requirements-nodeps.lock | sha256sum | cut -c1-16)-llama-$LLAMA_KEY"
if [[ ! -f "$STAMP" ]]; then
  log "installing the locked Python packages into .venv (requirements-dev.lock)"
  .venv/bin/pip install -q --require-hashes --no-deps -r requirements-dev.lock
  # A .venv made before with another llama.cpp build (e.g. a native one) gets this one.
  .venv/bin/pip install -q --no-deps --force-reinstall "$LLAMA_WHEELS"/llama_cpp_python-$LLAMA_VERSION-*.whl
  if ! PYTHONWARNINGS=ignore .venv/bin/pip install -q --no-deps --no-build-isolation -e . >"$CACHE/pip-editable.log" 2>&1; then
    cat "$CACHE/pip-editable.log"; log "installing the project itself (pip install -e .) failed (above)"; exit 1
  fi
  # Packages of requirements-nodeps.in lack their declared dependencies on purpose: their lines do not count.
  nodeps="$(grep -oE '^[A-Za-z0-9_.-]+' requirements-nodeps.in | paste -sd'|')"
  .venv/bin/pip check 2>&1 | grep -vE "^(${nodeps}) |^No broken requirements" >/tmp/voiceagent-pip-check.log || true
  if [[ -s /tmp/voiceagent-pip-check.log ]]; then
    cat /tmp/voiceagent-pip-check.log
    log "requirements-dev.lock does not satisfy pyproject.toml (above); run scripts/lock.sh and commit the locks"; exit 1
  fi
  # After the check: these declare dependencies they are installed without (requirements-nodeps.in).
  .venv/bin/pip install -q --require-hashes --no-deps -r requirements-nodeps.lock
  rm -f .venv/.installed-*; touch "$STAMP"
fi

# FERRETDB_BACKEND=postgresql (docs/backend.md): voicectl starts the machine's PostgreSQL server, so it must be there.
if [[ "$(.venv/bin/python -c 'from voicectl.data_services import LocalDataSettings as S; print(S().ferretdb_backend)')" == postgresql ]] \
   && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
  if [[ "$(id -u)" == 0 ]]; then
    log "installing PostgreSQL (FERRETDB_BACKEND=postgresql)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
      || { log "apt-get install postgresql failed"; exit 1; }
  else
    log "FERRETDB_BACKEND=postgresql needs PostgreSQL: sudo apt-get install postgresql (or FERRETDB_BACKEND=sqlite)"; exit 1
  fi
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
# One real request per engine, once per environment and CPU: a build that crashes or answers wrongly on this
# machine stops here, named, instead of starting a stack whose calls all end in the canned apology.
SMOKE=".venv/.smoke-$(printf '%s' "$STAMP $(grep -m1 '^flags' /proc/cpuinfo)" | sha256sum | cut -c1-16)"
if [[ ! -f "$SMOKE" ]]; then
  log "smoke test of the embedded engines (LLM, TTS, ASR)"
  if ! .venv/bin/voicectl smoke; then log "an engine does not work on this machine (above: which one and the fix)"; exit 1; fi
  rm -f .venv/.smoke-*; touch "$SMOKE"
fi
log "ready"
