#!/usr/bin/env bash
# The one test command: installs what it needs, then lint, type check, every pytest suite (which starts real
# FerretDB, MinIO, speech servers, backend and voice server itself) and the UI tests.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh --dev || exit 1
if [[ -f frontend/package.json ]] && ! command -v chromium >/dev/null && [[ "$(id -u)" == 0 ]]; then
  echo "[test] installing Debian's chromium for the UI tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium espeak-ng sox >/dev/null) || true
fi
status=0
echo "[test] ruff"; .venv/bin/ruff check . || status=1
echo "[test] mypy (backend, pipelines, core, voice_server, speech)"
.venv/bin/mypy backend pipelines core voice_server speech voicectl || status=1
echo "[test] pytest"
.venv/bin/pytest -q -p no:cacheprovider "$@"; rc=$?
if [[ $rc == 5 ]]; then echo "[test] pytest collected no tests"; rc=0; fi
[[ $rc != 0 ]] && status=$rc
if [[ -f frontend/package.json ]]; then
  echo "[test] UI unit tests (vitest)"; (cd frontend && npm run -s test) || status=1
fi
exit $status
