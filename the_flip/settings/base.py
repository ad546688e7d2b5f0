"""Settings for every environment, read from environment variables.

The names and defaults are the project's outside contract (see README): DATA_DIR holds
everything that must persist, DATABASE_URL switches Django *and* the huey queue to
PostgreSQL, FORCE_HTTPS turns on the settings a TLS-terminating platform wants.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from the_flip import sizing
from the_flip.media import Limits, Target
from the_flip.sizing import env_int


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def bucket_origins(bucket: str, endpoint: str, region: str) -> list[str]:
    """Where a presigned URL of the media bucket points, for the CSP: the endpoint's origin
    (path-style URLs) and the bucket's virtual-host origin on it; AWS S3 itself without an
    endpoint. Given the media storage's own options (its bucket, endpoint and region)."""
    if not bucket:
        return []
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        scheme, host = parts.scheme, parts.netloc
        return [f"{scheme}://{host}", f"{scheme}://{bucket}.{host}"]
    hosts = ["s3.amazonaws.com"] + ([f"s3.{region}.amazonaws.com"] if region else [])
    return [f"https://{bucket}.{host}" for host in hosts] + [f"https://{host}" for host in hosts]


BASE_DIR = Path(__file__).resolve().parent.parent.parent

# Railway mounts its volume wherever it likes and says so in RAILWAY_VOLUME_MOUNT_PATH.
DATA_DIR = Path(
    os.environ.get("DATA_DIR") or os.environ.get("RAILWAY_VOLUME_MOUNT_PATH") or BASE_DIR / "data"
).resolve()
# Nothing is created at import: the SQLite queue creates its folder when huey opens it
# (worker/queue.py: SqliteHuey), the maintenance app its media and upload folders.

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
    "axes",  # login throttle (Security below)
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
    # Before anything reads a body: refuses one that is too large for this user and view.
    "the_flip.apps.maintenance.request_limits.RequestBodyLimitMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before CSRF: API calls from strangers are refused before the body is read.
    "the_flip.apps.maintenance.middleware.ApiAuthMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last: turns a login refused by the throttle into the login page with the reason.
    "axes.middleware.AxesMiddleware",
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
        "huey_class": "the_flip.apps.worker.queue.SqliteHuey",  # creates DATA_DIR if missing
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
    "max_delay": env_float("WORKER_MAX_POLL_DELAY", 0.2),
    "check_worker_health": True,
    "periodic": True,
}

# --- Worker policy (run_worker, tasks, chores, health): the one place for its timing --------

# A video is tried at most this many times (an attempt that dies, hangs or runs out of memory
# counts; a graceful stop for a deploy does not), then fails with the original kept.
TRANSCODE_MAX_ATTEMPTS = env_int("TRANSCODE_MAX_ATTEMPTS", 3)
# `processing` with no progress heartbeat (written ~1/s) for this long: its worker died.
TRANSCODE_STALE_SECONDS = env_int("TRANSCODE_STALE_SECONDS", 120)
# At consumer start-up no other worker is running, so the margin is small.
WORKER_STARTUP_STALE_SECONDS = env_float("WORKER_STARTUP_STALE_SECONDS", 5)
# `pending` this long with no task in the queue for it: the task was lost; enqueue again.
TRANSCODE_REQUEUE_PENDING_SECONDS = env_int("TRANSCODE_REQUEUE_PENDING_SECONDS", 60)
# The heartbeat chore's period, in minutes; Sentry Crons expects a check-in as often.
WORKER_HEARTBEAT_MINUTES = 1
# A running transcode holds the only worker thread (the heartbeat chore waits behind it), so
# its progress also beats, at most this often: a little under the heartbeat period.
WORKER_PROGRESS_BEAT_SECONDS = WORKER_HEARTBEAT_MINUTES * 60 - 10
# Each worker process also writes its own heartbeat row this often, from a thread of its own
# (health.start_beating), whatever its worker thread is busy with.
WORKER_BEAT_SECONDS = env_float("WORKER_BEAT_SECONDS", 15)
# No heartbeat for this long: the worker is dead (allows one missed beat of the chore); its
# videos go back in line (chores.reset_stale_transcodes), /healthz counts it out.
WORKER_HEARTBEAT_MAX_AGE = env_int("WORKER_HEARTBEAT_MAX_AGE", 150)
# Sentry Crons: an issue after 2 missed check-ins, each allowed 3 minutes late.
SENTRY_CRONS_MONITOR_CONFIG = {
    "schedule": {"type": "interval", "value": WORKER_HEARTBEAT_MINUTES, "unit": "minute"},
    "checkin_margin": 3,
    "max_runtime": 1,
    "failure_issue_threshold": 2,
    "recovery_threshold": 1,
}
# A video processing without a sign of life this long is "stuck" (healthz 503); one pending
# this long is "waiting" while a worker makes progress on another, "stuck" when none does.
STUCK_AFTER_SECONDS = env_int("STUCK_AFTER_SECONDS", 15 * 60)
# ... and stuck anyway once it has waited this long, busy worker or not (queue far too long).
WAITING_MAX_SECONDS = env_int("WAITING_MAX_SECONDS", 3 * 3600)
# Shortest first: a video whose estimated conversion (a lower bound, plan.estimate_cost) is
# longer than this goes back in line behind the videos waiting (tasks.LONG_JOB_PRIORITY).
TRANSCODE_SHORT_JOB_SECONDS = env_int("TRANSCODE_SHORT_JOB_SECONDS", 120)
# huey crontab() arguments of the periodic chores (tasks.py).
WORKER_SCHEDULES = {
    "write_heartbeat": {"minute": f"*/{WORKER_HEARTBEAT_MINUTES}"},
    "reset_stale_transcodes": {"minute": "*"},  # every minute: nothing lost stays lost long
    "prune": {"minute": "17"},  # hourly
    "expire_partial_uploads": {"minute": "37"},  # hourly
}
# The consumer exits after this many tasks (chores not counted); supervisord starts a fresh one.
WORKER_MAX_TASKS = env_int("WORKER_MAX_TASKS", 5)
WORKER_MIN_LIFETIME = env_float("WORKER_MIN_LIFETIME", 6)  # > supervisord startsecs
# Graceful stop: cancelling ffmpeg takes ~0.1 s; never wait longer than this (supervisord's
# stopwaitsecs is 20).
WORKER_SHUTDOWN_TIMEOUT = env_float("WORKER_SHUTDOWN_TIMEOUT", 15)
# The hourly `prune` chore: the task log keeps the last N successes (and, separately, the last
# N skipped runs) and the failures of the last N days; a record still queued/running after
# TASK_RECORDS_LOST_AFTER_SECONDS belongs to a task that was lost and becomes a failure.
TASK_RECORDS_KEEP_SUCCEEDED = env_int("TASK_RECORDS_KEEP_SUCCEEDED", 50)
TASK_RECORDS_KEEP_FAILED_DAYS = env_int("TASK_RECORDS_KEEP_FAILED_DAYS", 90)
TASK_RECORDS_LOST_AFTER_SECONDS = env_int("TASK_RECORDS_LOST_AFTER_SECONDS", 24 * 3600)
# ... media files no row references, once this old (an upload being saved is never touched),
ORPHAN_FILE_MIN_AGE = env_int("ORPHAN_FILE_MIN_AGE", 3600)
# ... and the heartbeat rows of workers gone this long (every restart is a new worker).
WORKER_HEARTBEAT_ROWS_KEPT_SECONDS = 24 * 3600
# ... and temp files under DATA_DIR/tmp untouched this long.
TEMP_FILE_MAX_AGE = env_int("TEMP_FILE_MAX_AGE", 6 * 3600)

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
MEDIA_URL_EXPIRY_SECONDS = env_int("MEDIA_URL_EXPIRY_SECONDS", 600)
# The ACL of new objects; empty for stores without ACLs (the bucket's default applies).
BUCKET_ACL = os.environ.get("BUCKET_ACL", "private").strip()
# /healthz asks the bucket whether it answers at most this often (seconds, per process).
STORAGE_HEALTH_CACHE_SECONDS = env_float("STORAGE_HEALTH_CACHE_SECONDS", 5)
# A transcode that could not reach the file store is tried again this much later (seconds).
STORAGE_RETRY_SECONDS = env_int("STORAGE_RETRY_SECONDS", 60)
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

MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_MB", 200) * 1024 * 1024
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

# --- Request bodies and the web front (nginx; maintenance/request_limits.py, deploy/) ------

# Every request body but a maintainer's upload: login, logout, admin, JSON, page forms.
REQUEST_BODY_MAX_BYTES = env_int("REQUEST_BODY_MAX_KB", 1024) * 1024
# nginx's temp files (request bodies it buffers for gunicorn, large answers).
NGINX_TEMP_DIR = DATA_DIR / "tmp" / "nginx"
# nginx's question "may this client send this body?" (request_limits.body_gate) carries the
# original request's scheme; a redirect would be an error to nginx, so it never gets one.
SECURE_REDIRECT_EXEMPT = [r"^_body_gate$"]

# --- Photos (maintenance/photos.py; docs/security.md "Photos") ------------------------------

# Most pixels a photo's decode may hold (50 MP: a 48 MP iPhone HEIC or a 50 MP Android photo
# passes). A baseline JPEG counts at the size it is decoded at (scaled down by libjpeg), so a
# 200 MP phone JPEG passes too.
PHOTO_MAX_PIXELS = env_int("PHOTO_MAX_PIXELS", 50_000_000)
# HEIC and WebP files are read into memory whole: larger ones are refused before opening.
PHOTO_MAX_READ_BYTES = env_int("PHOTO_MAX_READ_MB", 40) * 1024 * 1024
# Photo decodes at once per web process (the_flip/sizing.py: 1 or 2 from the memory budget).
PHOTO_DECODES = sizing.photo_decodes()
# A photo that waits this long for a decode slot is refused with 503 ("try again").
PHOTO_DECODE_WAIT_SECONDS = env_float("PHOTO_DECODE_WAIT_SECONDS", 60)

# --- Resumable uploads (tus, maintenance/tus.py) and retried log entries (Idempotency-Key) ---

# An unfinished upload is removed with its bytes this long after its last PATCH: never less
# than 24 h (the contract's promise, so a phone can come back tomorrow morning).
TUS_EXPIRE_HOURS = max(24, env_int("TUS_EXPIRE_HOURS", 24))
# Expired this long ago and still stored: the hourly chore that removes them is not running
# (check_worker says so).
TUS_EXPIRED_OVERDUE_HOURS = 3
# One PATCH stops reading after this long and keeps what arrived (the client resumes from
# there), so a slow phone never holds a web thread for minutes.
TUS_PATCH_READ_SECONDS = env_int("TUS_PATCH_READ_SECONDS", 60)
# The page sends this much per PATCH: small enough that a drop loses little and one request
# is short, large enough that a 200 MB video is ~50 requests (nginx's body limit covers it).
TUS_CHUNK_BYTES = 4 * 1024 * 1024
# A PATCH claim older than this belongs to a request that died (killed worker): another PATCH
# may take the upload over. Comfortably more than reading plus storing one chunk.
TUS_CLAIM_STALE_SECONDS = 3 * TUS_PATCH_READ_SECONDS
# The same Idempotency-Key from the same maintainer within this long answers the first entry.
IDEMPOTENCY_KEY_HOURS = 24

# --- Media pipeline policy (one place; passed into the_flip.media) --------------------------

TRANSCODE_TARGET = Target()  # the product spec: H.264 main crf 23 medium, AAC 128k, 2400 px
TRANSCODE_LIMITS = Limits(
    max_duration=env_float("MAX_VIDEO_MINUTES", 15) * 60,
    timeout=env_float("TRANSCODE_TIMEOUT_SECONDS", 30 * 60),
    # Unset or 0: sized from the CPUs this process may use (x264's own 1.5x); ffmpeg is niced, so
    # the web stays responsive either way. A number caps decoder, filters and encoder.
    threads=env_int("TRANSCODE_THREADS", 0) or None,
    # The CPUs and, above 1080p, x264's lookahead follow the machine (the_flip/sizing.py):
    # TRANSCODE_CPUS, TRANSCODE_LARGE_LOOKAHEAD override them.
    cpus=sizing.transcode_cpus(),
    large_rc_lookahead=sizing.large_rc_lookahead(),
    # This machine's speed for the up-front cost estimate (a video that cannot finish within
    # the timeout is refused): output pixels per CPU-second, measured with bench/cost.py.
    pixels_per_cpu_second=env_float(
        "TRANSCODE_PIXELS_PER_CPU_SECOND", Limits.pixels_per_cpu_second
    ),
)
TRANSCODE_WORK_DIR = DATA_DIR / "tmp" / "transcode"

# --- Security (docs/security.md) -------------------------------------------------------------

# Password guessing: after this many failed logins for one username, or from one client
# address, further attempts are refused (429 with a sentence) for LOGIN_LOCKOUT_MINUTES; each
# failure during the lock restarts it. Unlock early: `manage.py axes_reset_username <name>`,
# `manage.py axes_reset_ip <address>`, or delete the row under Axes > Access attempts in /admin/.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15)
# Peers whose X-Real-IP / X-Forwarded-For name the client: our nginx on this machine (a unix
# socket peer is trusted too). Anyone else's headers are ignored.
TRUSTED_PROXY_IPS = env_list("TRUSTED_PROXY_IPS", "127.0.0.1,::1")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]  # either one alone locks
AXES_RESET_ON_SUCCESS = True  # a right password forgives the typos before it
AXES_CLIENT_IP_CALLABLE = "the_flip.apps.accounts.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "the_flip.apps.accounts.throttle.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are counted either way; no row per successful login

# Content-Security-Policy: our own files only (no inline script or style anywhere, the admin's
# included), never framed, forms post only here. Videos, posters and photos may also come
# from the bucket, where /media/ redirects to a presigned URL.
_MEDIA_BUCKET = STORAGES["default"].get("OPTIONS", {}) if BUCKET_NAME else {}
CSP_MEDIA_ORIGINS = bucket_origins(
    _MEDIA_BUCKET.get("bucket_name", ""),
    _MEDIA_BUCKET.get("endpoint_url") or "",
    _MEDIA_BUCKET.get("region_name") or "",
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", *CSP_MEDIA_ORIGINS],
        "media-src": ["'self'", *CSP_MEDIA_ORIGINS],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

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
