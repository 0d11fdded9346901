"""The object store resource: which bucket, on S3 or in a local directory (annobase.object_store)."""

from __future__ import annotations

import dagster as dg

from annobase.object_store import LocalObjectStore, ObjectStore, S3ObjectStore


class ObjectStoreResource(dg.ConfigurableResource):
    """The bucket annobase reads uploads from and writes everything else to.

    With `local_root` set it is the embedded directory store; otherwise S3 at `endpoint_url`
    (unset means AWS). Credentials are never configured here: boto3 reads them from the environment.
    """

    bucket: str = "annobase"
    endpoint_url: str | None = None
    local_root: str | None = None

    def open(self) -> ObjectStore:
        if self.local_root:
            return LocalObjectStore(self.local_root, self.bucket)
        return S3ObjectStore(self.bucket, self.endpoint_url)
