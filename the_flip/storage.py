"""Where media lives: DATA_DIR/media on local disk, or an S3-compatible bucket (BUCKET_NAME).

settings/base.py picks the backend (its media storage block); everything else goes through
Django's storage API (``default_storage``, ``FieldFile.storage``), so the two are
interchangeable by configuration alone. This module holds the little a bucket needs beyond
that API: streaming reads, signed URLs for /media/..., a cheap reachability probe (system
check, /healthz), telling "the file store did not answer" apart from other errors, and
aborting the multipart uploads a crashed process left behind.

Credentials and endpoint are the standard variables boto3 itself reads (AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL_S3, AWS_REGION), which `fly storage create` sets.
"""

from __future__ import annotations

import contextvars
import logging
import mimetypes
import threading
import time
from datetime import datetime, timedelta

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)
from django.conf import settings
from django.core import checks
from django.core.files.base import File
from django.core.files.storage import Storage, default_storage
from django.utils import timezone
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

MIB = 1024 * 1024
log = logging.getLogger(__name__)


def _transfer_config() -> TransferConfig:
    """8 MiB parts, two sent at a time, at most two read ahead of the network (s3transfer's
    default reads ten ahead: ~116 MiB for one 200 MiB upload, see docs/benchmarks.md)."""
    config = TransferConfig(
        multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=2
    )
    config.max_in_memory_upload_chunks = (
        2  # s3transfer's knob; boto3 does not take it as an argument
    )
    return config


class MediaBucket(S3Storage):
    """django-storages' S3Storage with the_flip's defaults (settings pass bucket_name,
    endpoint_url, region_name, default_acl and querystring_expire).

    - never overwrite (names are random anyway), private objects, signed URLs (SigV4, which
      Tigris, R2 and MinIO require) that expire after MEDIA_URL_EXPIRY_SECONDS;
    - Content-Type from the name (video/mp4, image/jpeg): iOS plays only a video whose
      bucket answers with the right type;
    - uploads are multipart in 8 MiB parts, two at a time, two read ahead: a 200 MiB upload
      grows the process by ~37 MiB, a third of boto3's defaults (bench/bucket_upload.py),
      which matters with several gunicorn threads uploading at once;
    - reads (``open(name, "rb")``) stream the object's body, instead of downloading all of
      it into memory first as S3File does;
    - short timeouts and few retries, so a file store that stopped answering is reported
      in seconds ("the file store did not answer"), not after minutes.
    """

    def get_default_settings(self) -> dict:
        defaults = super().get_default_settings()
        defaults.update(
            file_overwrite=False,
            default_acl="private",
            querystring_auth=True,
            object_parameters={"CacheControl": "private, max-age=31536000, immutable"},
            client_config=Config(
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
            transfer_config=_transfer_config(),
        )
        return defaults

    def get_object_parameters(self, name: str) -> dict:
        """Content-Type from our own (random) name's extension, never from what the phone
        declared: video/mp4 and image/jpeg for what /media/ serves."""
        params = super().get_object_parameters(name)
        params.setdefault("ContentType", mimetypes.guess_type(name)[0] or self.default_content_type)
        return params

    def _open(self, name: str, mode: str = "rb") -> File:
        if mode != "rb":
            return super()._open(name, mode)
        client = self.connection.meta.client
        try:
            answer = client.get_object(
                Bucket=self.bucket_name, Key=self._normalize_name(clean_name(name))
            )
        except client.exceptions.NoSuchKey as missing:
            raise FileNotFoundError(f"File does not exist: {name}") from missing
        stream = File(answer["Body"], name)
        stream.size = answer["ContentLength"]
        return stream


# --- Questions the rest of the app asks ----------------------------------------------------


def is_bucket(storage: Storage = default_storage) -> bool:
    """True when media lives in a bucket (so /media/... redirects to a signed URL)."""
    return isinstance(storage, S3Storage)  # a LazyObject answers for what it wraps


def signed_url(name: str) -> str:
    """A short-lived URL of the bucket for one stored object (MEDIA_URL_EXPIRY_SECONDS)."""
    return default_storage.url(name)


# What a storage call raises when the bucket did not answer (network, timeout, 5xx, refused
# credentials): such a transcode is retried later instead of failing. (A missing object is
# FileNotFoundError, as on local disk.)
STORE_ERRORS = (BotoCoreError, ClientError)


# --- Is the bucket there? (system check and /healthz) --------------------------------------


def bucket_problem(timeout: float = 5) -> str | None:
    """None when the bucket answers; otherwise a sentence an operator can act on."""
    options = settings.STORAGES["default"].get("OPTIONS", {})
    name = options.get("bucket_name") or settings.BUCKET_NAME
    endpoint = options.get("endpoint_url") or "AWS S3 (AWS_ENDPOINT_URL_S3 is not set)"
    session = boto3.Session()
    if session.get_credentials() is None:
        return (
            f"BUCKET_NAME is set ({name}) but no credentials were found: set "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (`fly storage create` prints them)."
        )
    client = session.client(
        "s3",
        endpoint_url=options.get("endpoint_url"),
        region_name=options.get("region_name"),
        config=Config(
            signature_version="s3v4",
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1, "mode": "standard"},
        ),
    )
    try:
        client.head_bucket(Bucket=name)
    except NoCredentialsError:
        return "No credentials for the bucket: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            return (
                f"The bucket {name!r} does not exist at {endpoint}. Create it (for example "
                "`fly storage create`) or correct BUCKET_NAME."
            )
        if status in (401, 403):
            return (
                f"The file store at {endpoint} refused our credentials for bucket {name!r} "
                f"({status}). Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that the "
                "key may use this bucket."
            )
        return f"The file store at {endpoint} answered {status} for bucket {name!r}: {error}"
    except (EndpointConnectionError, ParamValidationError, ValueError) as error:
        return (
            f"The file store at {endpoint} did not answer ({error}). Check "
            "AWS_ENDPOINT_URL_S3 and that the service is up."
        )
    except BotoCoreError as error:
        return f"The file store at {endpoint} did not answer ({error})."
    return None


_probe_lock = threading.Lock()
_probe: tuple[float, str | None] = (0.0, None)


def cached_bucket_problem(max_age: float) -> str | None:
    """bucket_problem(), asked at most once per ``max_age`` seconds per process: /healthz is
    probed every ~10 s by platforms and must not hammer the bucket."""
    global _probe
    with _probe_lock:
        checked_at, problem = _probe
        if time.monotonic() - checked_at < max_age:
            return problem
    problem = bucket_problem(timeout=3)
    if problem:
        log.warning("media storage: %s", problem)
    with _probe_lock:
        _probe = (time.monotonic(), problem)
    return problem


# --- Leftovers of a crash mid-upload -------------------------------------------------------


def abort_stale_multipart_uploads(storage, older_than: timedelta) -> list[str]:
    """A process killed while uploading to the bucket leaves an unfinished multipart upload:
    invisible in listings, but stored (and billed). Abort those idle for ``older_than``
    (started that long ago, and no part since); return their keys."""
    client = storage.connection.meta.client
    cutoff: datetime = timezone.now() - older_than
    aborted = []
    paginator = client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=storage.bucket_name):
        for upload in page.get("Uploads", ()):
            where = {"Bucket": storage.bucket_name, "Key": upload["Key"]}
            parts = client.list_parts(**where, UploadId=upload["UploadId"]).get("Parts", ())
            last_active = max([upload["Initiated"], *(part["LastModified"] for part in parts)])
            if last_active < cutoff:
                client.abort_multipart_upload(
                    Bucket=storage.bucket_name, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted.append(upload["Key"])
    return aborted


# --- Bad configuration is reported at start (manage.py check, migrate, make run) -----------

CHECK_TAG = "storage"
_skipping_check = contextvars.ContextVar("the_flip_skipping_storage_check", default=False)


class SkipsStorageCheck:
    """Mixin for a management command that runs every system check except the bucket's.

    For the commands that (re)start while the site runs, which a file store down for a
    minute must not stop: run_worker (its transcodes wait and retry), run_nginx (nginx never
    touches the bucket; supervisord restarts it, and a failed start stops the container) and
    check_worker (the operator's way to learn that the store is down: it prints "storage:
    unreachable"). `manage.py check` and `migrate`, so `make run` and the web's start, still
    report a bad bucket. Every other check still runs, untagged ones too (a filter on tags,
    as ``get_check_kwargs`` could return, would drop those)."""

    def check(self, *args, **kwargs):
        token = _skipping_check.set(True)
        try:
            return super().check(*args, **kwargs)
        finally:
            _skipping_check.reset(token)


def check_media_storage(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """With BUCKET_NAME: credentials present, the endpoint answers, the bucket exists and
    lets us in. (One HEAD request, so it stops what runs it when the file store is down:
    `manage.py check`, `migrate` and so `make run` and the web's start run it; the commands
    with SkipsStorageCheck above do not.)"""
    if not settings.BUCKET_NAME or _skipping_check.get():
        return []
    problem = bucket_problem()
    found = []
    if problem:
        found.append(checks.Error(problem, id="the_flip.E001"))
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        found.append(
            checks.Warning(
                "Media is in a bucket but the database is SQLite in DATA_DIR: the web and "
                "the worker must then share that folder on one machine.",
                hint="Set DATABASE_URL to a PostgreSQL database to run them apart.",
                id="the_flip.W001",
            )
        )
    return found
