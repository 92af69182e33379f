"""Creates the recordings and knowledge buckets and each service's MinIO user with its policy, with the root keys. Idempotent:
run on every deployment, it updates the policies and resets the keys to the configured ones."""

from __future__ import annotations

import time

from minio import Minio
from minio.credentials import StaticProvider
from minio.error import MinioAdminException, S3Error
from minio.minioadmin import MinioAdmin
from urllib3.exceptions import HTTPError

from provision.config import ProvisionSettings
from provision.policies import ServiceUser, backend_policy, voice_server_policy


def service_users(settings: ProvisionSettings) -> list[ServiceUser]:
    bucket, knowledge = settings.s3_bucket_recordings, settings.s3_bucket_knowledge
    return [
        ServiceUser(settings.s3_backend_access_key, settings.s3_backend_secret_key.get_secret_value(),
                    "voiceagent-backend", backend_policy(bucket, knowledge)),
        ServiceUser(settings.s3_voice_access_key, settings.s3_voice_secret_key.get_secret_value(),
                    "voiceagent-voice-server", voice_server_policy(bucket, knowledge)),
    ]


def _wait_for(client: Minio, bucket: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client.bucket_exists(bucket)
            return
        except (HTTPError, S3Error) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the object store did not answer within {wait_s:g}s: {exc}") from exc
            time.sleep(1.0)


def provision_minio(settings: ProvisionSettings) -> list[ServiceUser]:
    root = StaticProvider(settings.minio_root_user, settings.minio_root_password.get_secret_value())
    client = Minio(settings.s3_endpoint, credentials=root, secure=settings.s3_secure, region=settings.s3_region)
    admin = MinioAdmin(endpoint=settings.s3_endpoint, credentials=root, secure=settings.s3_secure,
                       region=settings.s3_region)
    bucket = settings.s3_bucket_recordings
    _wait_for(client, bucket, settings.provision_wait_s)
    for name in (bucket, settings.s3_bucket_knowledge):
        if not client.bucket_exists(name):
            client.make_bucket(name)
    users = service_users(settings)
    for user in users:
        try:
            admin.policy_add(user.policy_name, policy=user.policy)
            admin.user_add(user.access_key, user.secret_key)
            admin.policy_set(user.policy_name, user=user.access_key)
        except MinioAdminException as exc:
            raise RuntimeError(f"could not provision MinIO user {user.access_key!r}: {exc}") from exc
    return users
