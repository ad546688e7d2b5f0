"""The huey queue as the rest of the app sees it: how to connect, what is waiting.

PostgreSQL: huey keeps its own connection (autocommit, LISTEN/NOTIFY), but it is built from
Django's *current* database settings each time it (re)connects, so the queue always lives in
the same database as the rows: `manage.py` and the consumer use DATABASE_URL's database, and
under pytest-django both the test process and a consumer subprocess use `test_<name>`, whose
queue tables vanish with it. This module imports no Django at import time (settings use it).
"""

from __future__ import annotations

from pathlib import Path

import huey

# psycopg connection keywords that may come from DATABASES["default"]["OPTIONS"]; Django-only
# options (pool, server_side_binding, isolation_level, assume_role, ...) are left out.
_PSYCOPG_OPTIONS = {
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "options",
    "service",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
}


class SqliteHuey(huey.SqliteHuey):
    """huey's SQLite queue, which opens its file the moment djhuey builds it (while Django
    loads its apps): it creates the file's folder first, so a fresh volume needs nothing."""

    def __init__(self, name: str = "huey", *args, filename: str = "huey.db", **kwargs):
        Path(filename).parent.mkdir(parents=True, exist_ok=True)
        super().__init__(name, *args, filename=filename, **kwargs)


def postgres_connection():
    """Open a psycopg connection to Django's default database (huey's `connection=`)."""
    import psycopg
    from django.db import connections

    db = connections["default"].settings_dict
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "connect_timeout": 5,
        "application_name": "the_flip-huey",
    }
    params.update({k: v for k, v in (db.get("OPTIONS") or {}).items() if k in _PSYCOPG_OPTIONS})
    return psycopg.connect(**{k: v for k, v in params.items() if v is not None})


def _huey():
    from huey.contrib.djhuey import HUEY

    return HUEY


def queued_media_ids() -> set[int]:
    """Ids of media that a queued or scheduled transcode task will pick up."""
    from .records import media_id_of

    huey = _huey()
    ids = {media_id_of(task) for task in [*huey.pending(), *huey.scheduled()]}
    return ids - {None}


def queue_length() -> int:
    return _huey().pending_count()


def oldest_queued_age() -> float | None:
    """Seconds the oldest queued task has waited (from its enqueue time), None when empty."""
    from .models import TaskRecord

    huey = _huey()
    ids = [task.id for task in huey.pending(limit=50)]
    if not ids:
        return None
    first = (
        TaskRecord.objects.filter(task_id__in=ids, enqueued_at__isnull=False)
        .order_by("enqueued_at")
        .values_list("enqueued_at", flat=True)
        .first()
    )
    if first is None:
        return 0.0
    from django.utils import timezone

    return max(0.0, (timezone.now() - first).total_seconds())
