"""Each service's MinIO policy: only the actions its code performs, only on the recordings and knowledge buckets.

- backend: checks the bucket at start-up (HEAD bucket = s3:ListBucket), reads recordings (ranged GETs) and signs
  GET URLs for them. It never writes or deletes recordings. It owns the knowledge bucket: uploaded documents and
  the LanceDB tables it writes, compacts and deletes from (list, read, write, delete).
- voice server: uploads recordings (single and multipart PUTs). It never reads, lists or deletes them. It searches
  the knowledge tables (list and read the knowledge bucket, no writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ServiceUser:
    access_key: str
    secret_key: str
    policy_name: str
    policy: dict[str, Any]


def _statement(actions: list[str], resource: str) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": [resource]}


def backend_policy(bucket: str, knowledge: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        _statement(["s3:GetBucketLocation", "s3:ListBucket"], f"arn:aws:s3:::{bucket}"),
        _statement(["s3:GetObject"], f"arn:aws:s3:::{bucket}/*"),
        _statement(["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                   f"arn:aws:s3:::{knowledge}"),
        _statement(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts"], f"arn:aws:s3:::{knowledge}/*"),
    ]}


def voice_server_policy(bucket: str, knowledge: str) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        _statement(["s3:GetBucketLocation"], f"arn:aws:s3:::{bucket}"),
        _statement(["s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                   f"arn:aws:s3:::{bucket}/*"),
        _statement(["s3:GetBucketLocation", "s3:ListBucket"], f"arn:aws:s3:::{knowledge}"),
        _statement(["s3:GetObject"], f"arn:aws:s3:::{knowledge}/*"),
    ]}
