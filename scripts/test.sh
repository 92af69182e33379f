#!/usr/bin/env bash
# The one test command: installs what it needs, then lint, type check, every pytest suite (which starts real
# FerretDB, MinIO, speech servers, backend, voice server, nginx and Chromium itself) and the UI tests.
# A missing prerequisite is installed or fails the run: a green run must never hide a suite that could not start.
# Under CI=true only GPU-only tests may skip (tests/conftest.py turns any other skip into a failure).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1

# Debian packages the suites use: Chromium (UI e2e, production-like run), espeak-ng + sox (a caller voice that is
# not the agent's own), nginx + gettext-base (envsubst) for the production-like run behind the UI image's proxy,
# postgresql for FerretDB's PostgreSQL handler (FERRETDB_BACKEND=postgresql, tests/backend/test_postgresql_backend.py).
TEST_DEBS=(chromium espeak-ng sox nginx gettext-base postgresql)
missing=()
for deb in "${TEST_DEBS[@]}"; do dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "ok installed" || missing+=("$deb"); done
if (( ${#missing[@]} )); then
  if [[ "$(id -u)" == 0 ]]; then
    echo "[test] installing Debian packages for the tests: ${missing[*]}"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null); then
      echo "[test] error: could not install ${missing[*]} (apt-get failed); the UI and production-like suites need them"
      exit 1
    fi
  else
    echo "[test] error: missing Debian packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
    exit 1
  fi
fi
if [[ ! -d frontend/node_modules/playwright-core ]]; then
  echo "[test] error: frontend/node_modules is incomplete (bootstrap's npm install failed?)"; exit 1
fi

status=0
echo "[test] ruff"; .venv/bin/ruff check . || status=1
echo "[test] mypy (the packages listed in pyproject.toml's [tool.mypy] files)"
.venv/bin/mypy || status=1
echo "[test] pytest"
.venv/bin/pytest -q -rs -p no:cacheprovider "$@"; rc=$?
if [[ $rc == 5 ]]; then echo "[test] pytest collected no tests"; rc=0; fi
[[ $rc != 0 ]] && status=$rc
echo "[test] UI unit tests (vitest)"; (cd frontend && npm run -s test) || status=1
echo "[test] dependency audit (pip-audit, npm audit)"; bash scripts/audit.sh || status=1
exit $status
