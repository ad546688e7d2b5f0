"""Settings for every environment, read from environment variables.

The names and defaults are the project's outside contract (see README): DATA_DIR holds
everything that must persist, DATABASE_URL switches Django *and* the huey queue to
PostgreSQL, FORCE_HTTPS turns on the settings a TLS-terminating platform wants.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from the_flip.media import Limits, Target


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Railway mounts its volume wherever it likes and says so in RAILWAY_VOLUME_MOUNT_PATH.
DATA_DIR = Path(
    os.environ.get("DATA_DIR") or os.environ.get("RAILWAY_VOLUME_MOUNT_PATH") or BASE_DIR / "data"
).resolve()
# huey opens its SQLite queue while settings load, so the folder must exist by then.
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG")

# SECRET_KEY: the environment, else the key `make run` generated into DATA_DIR (so
# `manage.py` works in a checkout without exporting anything), else a development key when
# DEBUG is on. Production without any of these refuses to start.
SECRET_KEY_FILE = DATA_DIR / "secret_key"
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY and SECRET_KEY_FILE.is_file():
    SECRET_KEY = SECRET_KEY_FILE.read_text().strip()
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "Set SECRET_KEY (or DEBUG=1 for a development key). `make run` creates one for you."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-" + "x" * 20

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1")
CSRF_TRUSTED_ORIGINS = [
    origin if "://" in origin else f"https://{origin}"
    for origin in env_list("CSRF_TRUSTED_ORIGINS", "localhost,127.0.0.1")
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "huey.contrib.djhuey",
    "the_flip.apps.accounts",
    "the_flip.apps.catalog",
    "the_flip.apps.maintenance",
    "the_flip.apps.worker",
]

MIDDLEWARE = [
    # First: platform health checks pass no HTTPS redirect or ALLOWED_HOSTS check.
    "the_flip.apps.worker.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before CSRF: API calls from strangers are refused before the body is read.
    "the_flip.apps.maintenance.middleware.ApiAuthMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

CSRF_FAILURE_VIEW = "the_flip.apps.maintenance.api.csrf_failure"

ROOT_URLCONF = "the_flip.urls"
WSGI_APPLICATION = "the_flip.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "the_flip" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------

DATABASE_URL = os.environ.get("DATABASE_URL", "")
USING_POSTGRES = DATABASE_URL.startswith(("postgres://", "postgresql://"))

if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": {
                # WAL lets the web read while the worker writes; IMMEDIATE avoids the
                # "database is locked" upgrade deadlock between the two processes.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Queue (huey) ---------------------------------------------------------------------------

if USING_POSTGRES:
    # LISTEN/NOTIFY wakes the consumer the moment a task is enqueued. huey's connection is
    # built from DATABASES["default"] whenever it (re)connects, so the queue always lives in
    # Django's database: under pytest-django that is `test_<name>`, for test process and
    # consumer subprocess alike (see the_flip/apps/worker/queue.py). After a PostgreSQL
    # restart huey reconnects by itself (a broken connection is replaced on next use).
    from the_flip.apps.worker.queue import postgres_connection

    HUEY = {
        "huey_class": "huey.PostgresHuey",
        "name": "the_flip",
        "connection": {"connection": postgres_connection},  # djhuey unpacks this dict
        "blocking": True,
        # Tables come from `manage.py setup_queue` (run by `make run` and the container), so
        # importing settings never needs the database to be up.
        "create_tables": False,
        "immediate": False,
        "results": False,
    }
else:
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "the_flip",
        "filename": str(DATA_DIR / "huey.sqlite3"),
        "immediate": False,  # explicit: djhuey would otherwise follow DEBUG
        "results": False,
    }
HUEY["consumer"] = {
    "workers": 1,  # one transcode at a time: two cores, and the web must stay responsive
    "worker_type": "thread",
    # SQLite is polled: an idle consumer looks every 0.2 s at most (a cheap indexed read),
    # so a new upload is picked up ~0.1 s after it is queued (bench/pickup.py). PostgreSQL
    # blocks on LISTEN instead and ignores these.
    "initial_delay": 0.05,
    "backoff": 1.15,
    "max_delay": float(os.environ.get("WORKER_MAX_POLL_DELAY", "0.2")),
    "check_worker_health": True,
    "periodic": True,
}

# --- Worker policy (run_worker, chores, health) ---------------------------------------------

# A video is tried at most this many times (an attempt that dies, hangs or runs out of memory
# counts; a graceful stop for a deploy does not), then fails with the original kept.
TRANSCODE_MAX_ATTEMPTS = int(os.environ.get("TRANSCODE_MAX_ATTEMPTS", "3"))
# `processing` with no progress heartbeat (written ~1/s) for this long: its worker died.
TRANSCODE_STALE_SECONDS = int(os.environ.get("TRANSCODE_STALE_SECONDS", "120"))
# At consumer start-up no other worker is running, so the margin is small.
WORKER_STARTUP_STALE_SECONDS = float(os.environ.get("WORKER_STARTUP_STALE_SECONDS", "5"))
# `pending` this long with no task in the queue for it: the task was lost; enqueue again.
TRANSCODE_REQUEUE_PENDING_SECONDS = int(os.environ.get("TRANSCODE_REQUEUE_PENDING_SECONDS", "60"))
# Each worker process writes its heartbeat row this often (seconds), from a thread of its own.
WORKER_BEAT_SECONDS = float(os.environ.get("WORKER_BEAT_SECONDS", "15"))
# A worker whose heartbeat is older than this is gone (/healthz: no live worker; its videos
# go back in line). Several missed beats, and over a minute: the periodic heartbeat task also
# beats, so one consumer started without the beating thread stays healthy.
WORKER_HEARTBEAT_MAX_AGE = int(os.environ.get("WORKER_HEARTBEAT_MAX_AGE", "90"))
# A video pending, or processing without a sign of life, this long is "stuck" (healthz 503).
STUCK_AFTER_SECONDS = int(os.environ.get("STUCK_AFTER_SECONDS", str(15 * 60)))
# The consumer exits after this many tasks (chores not counted); supervisord starts a fresh one.
WORKER_MAX_TASKS = int(os.environ.get("WORKER_MAX_TASKS", "5"))
WORKER_MIN_LIFETIME = float(os.environ.get("WORKER_MIN_LIFETIME", "6"))  # > supervisord startsecs
# Graceful stop: cancelling ffmpeg takes ~0.1 s; never wait longer than this (supervisord's
# stopwaitsecs is 25).
WORKER_SHUTDOWN_TIMEOUT = float(os.environ.get("WORKER_SHUTDOWN_TIMEOUT", "15"))
# Task log pruning, orphaned media files and stale temp files (the hourly `prune` chore).
TASK_RECORDS_KEEP_SUCCEEDED = int(os.environ.get("TASK_RECORDS_KEEP_SUCCEEDED", "50"))
TASK_RECORDS_KEEP_FAILED_DAYS = int(os.environ.get("TASK_RECORDS_KEEP_FAILED_DAYS", "90"))
ORPHAN_FILE_MIN_AGE = int(os.environ.get("ORPHAN_FILE_MIN_AGE", "3600"))
TEMP_FILE_MAX_AGE = int(os.environ.get("TEMP_FILE_MAX_AGE", str(6 * 3600)))

# --- Auth -----------------------------------------------------------------------------------

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# --- I18n -----------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "the_flip" / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Media storage: DATA_DIR/media or an S3-compatible bucket (the_flip/storage.py) ---------

# Set: every stored file (originals, videos, posters, photos) lives in this bucket; the
# endpoint and credentials are the standard AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY and AWS_REGION that boto3 reads (`fly storage create` sets them all).
BUCKET_NAME = os.environ.get("BUCKET_NAME", "").strip()
# /media/... answers a redirect to a signed bucket URL valid this long (seconds).
MEDIA_URL_EXPIRY_SECONDS = int(os.environ.get("MEDIA_URL_EXPIRY_SECONDS", "600"))
# The ACL of new objects; empty for stores without ACLs (the bucket's default applies).
BUCKET_ACL = os.environ.get("BUCKET_ACL", "private").strip()
# /healthz asks the bucket whether it answers at most this often (seconds, per process).
STORAGE_HEALTH_CACHE_SECONDS = float(os.environ.get("STORAGE_HEALTH_CACHE_SECONDS", "5"))
# A transcode that could not reach the file store is tried again this much later (seconds).
STORAGE_RETRY_SECONDS = int(os.environ.get("STORAGE_RETRY_SECONDS", "60"))
if BUCKET_NAME:
    STORAGES["default"] = {
        "BACKEND": "the_flip.storage.MediaBucket",
        "OPTIONS": {
            "bucket_name": BUCKET_NAME,
            # None: boto3 reads AWS_ENDPOINT_URL_S3 itself; passed on so checks can name it.
            "endpoint_url": os.environ.get("AWS_ENDPOINT_URL_S3") or None,
            "region_name": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
            "default_acl": BUCKET_ACL or None,
            "querystring_expire": MEDIA_URL_EXPIRY_SECONDS,
        },
    }

# --- Uploads --------------------------------------------------------------------------------

MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_MB", "200")) * 1024 * 1024
# Uploads stream to a temp file in DATA_DIR (same filesystem as the media: the final move is
# a rename, and a big upload never fills a small /tmp).
FILE_UPLOAD_TEMP_DIR = DATA_DIR / "tmp" / "uploads"
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o644
FILE_UPLOAD_HANDLERS = [
    "the_flip.apps.maintenance.uploads.CappedUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
PHOTO_MAX_LONG_SIDE = 2400

# --- Media pipeline policy (one place; passed into the_flip.media) --------------------------

TRANSCODE_TARGET = Target()  # the product spec: H.264 main crf 23 medium, AAC 128k, 2400 px
TRANSCODE_LIMITS = Limits(
    max_duration=float(os.environ.get("MAX_VIDEO_MINUTES", "15")) * 60,
    timeout=float(os.environ.get("TRANSCODE_TIMEOUT_SECONDS", str(30 * 60))),
    # Unset: sized from the CPUs this process may use (x264's own 1.5x); ffmpeg is niced, so
    # the web stays responsive either way. A number caps decoder, filters and encoder.
    threads=int(os.environ["TRANSCODE_THREADS"]) if os.environ.get("TRANSCODE_THREADS") else None,
)
TRANSCODE_WORK_DIR = DATA_DIR / "tmp" / "transcode"

# --- Security -------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
FORCE_HTTPS = env_bool("FORCE_HTTPS")
if FORCE_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 60 * 60 * 24 * 365
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# --- Logging --------------------------------------------------------------------------------

LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d: %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "huey": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# --- Sentry ---------------------------------------------------------------------------------

SENTRY_DSN = os.environ.get("SENTRY_DSN", "")
SENTRY_CRONS_MONITOR = os.environ.get("SENTRY_CRONS_MONITOR", "the-flip-worker")
if SENTRY_DSN:
    from the_flip.sentry import init_sentry

    init_sentry(SENTRY_DSN)
