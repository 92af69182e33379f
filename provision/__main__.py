"""`python -m provision`: the deployment's one-shot job (docker compose `provision`, the k8s `provision` Job)."""

from __future__ import annotations

import sys

from provision.config import ProvisionSettings
from provision.minio_users import provision_minio


def main() -> int:
    settings = ProvisionSettings()  # type: ignore[call-arg]  # required fields come from the environment
    users = provision_minio(settings)
    for user in users:
        print(f"provision: MinIO user {user.access_key} has policy {user.policy_name} "
              f"on bucket {settings.s3_bucket_recordings}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
