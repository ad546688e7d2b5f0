"""A real S3 API over HTTP for the tests: moto's server, in this process, on a free port.

Never a mocked boto3: django-storages, boto3 and the worker's subprocesses talk HTTP to it,
as they would to Tigris or R2. Each test gets a bucket of its own (``Bucket``).
"""

import uuid

import boto3
from moto.server import ThreadedMotoServer

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "the-flip-test",
    "AWS_SECRET_ACCESS_KEY": "the-flip-test-secret",
    "AWS_REGION": "us-east-1",
}


class S3Server:
    """moto's S3 server on 127.0.0.1. ``stop()`` makes the port refuse connections (the
    bucket "stops answering"); ``start()`` again on the same port brings it back. In-process
    servers share moto's state, so the objects survive the outage, as a real bucket's do."""

    def __init__(self, port: int = 0):
        self.port = port
        self._server: ThreadedMotoServer | None = None

    def start(self) -> "S3Server":
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_REGION"],
        )


class Bucket:
    """One test's bucket, seen through the S3 API itself (not through our code)."""

    def __init__(self, server: S3Server, name: str | None = None):
        self.server = server
        self.name = name or f"media-{uuid.uuid4().hex[:12]}"
        self.client = server.client()
        self.client.create_bucket(Bucket=self.name)

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to keep its media in this bucket (as `fly storage create`
        sets it)."""
        return {
            **CREDENTIALS,
            "AWS_ENDPOINT_URL_S3": self.server.endpoint,
            "BUCKET_NAME": self.name,
        }

    def storage_setting(self) -> dict:
        """STORAGES["default"] as settings/base.py builds it from the variables above."""
        return {
            "BACKEND": "the_flip.storage.MediaBucket",
            "OPTIONS": {
                "bucket_name": self.name,
                "endpoint_url": self.server.endpoint,
                "region_name": CREDENTIALS["AWS_REGION"],
                "default_acl": "private",
                "querystring_expire": 600,
            },
        }

    def object_keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.name, Prefix=prefix
        )
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))

    def head(self, key: str) -> dict:
        return self.client.head_object(Bucket=self.name, Key=key)

    def unfinished_uploads(self) -> list[str]:
        answer = self.client.list_multipart_uploads(Bucket=self.name)
        return [upload["Key"] for upload in answer.get("Uploads", ())]

    def empty(self) -> None:
        for key in self.object_keys():
            self.client.delete_object(Bucket=self.name, Key=key)
