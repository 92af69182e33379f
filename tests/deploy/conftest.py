"""tests/deploy drives the browser with the UI tests' helpers (tests/ui/ui_e2e_helpers.py; tests/ is not a package,
so that folder goes on the import path like this one)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ui"))
