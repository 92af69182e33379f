"""Session-wide real servers for the tests.

FerretDB and MinIO are started once per pytest session on free loopback ports with data in a temporary state
folder, unless MONGODB_URI and S3_ENDPOINT point at running ones. Nothing is mocked.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicectl.data_services import DataServices, ensure_dev_secrets


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state")
    os.environ["VOICEAGENT_STATE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def data_services(state_dir: Path) -> Iterator[dict[str, str]]:
    """Starts real FerretDB + MinIO and exports their endpoints and dev secrets into os.environ."""
    for key, value in ensure_dev_secrets(state_dir).items():
        os.environ.setdefault(key, value)
    services = DataServices.from_env(state_dir, ephemeral_ports=True)
    env = services.start()
    os.environ.update(env)
    os.environ.setdefault("MONGODB_DB", f"test_{os.getpid()}")
    try:
        yield {**env, "MONGODB_DB": os.environ["MONGODB_DB"]}
    finally:
        services.stop()
