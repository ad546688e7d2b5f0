"""gunicorn settings for the_flip, each overridable by an environment variable.

Used by deploy/supervisord.conf (program "web"):
    gunicorn -c deploy/gunicorn.conf.py the_flip.wsgi
"""

import os


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{_env_int('PORT', 8000)}"

# gthread: a slow phone upload holds one thread, not a whole process. 2 x 4 suits a
# 2-core machine with ffmpeg running beside it.
worker_class = "gthread"
workers = _env_int("WEB_CONCURRENCY", 2)
threads = _env_int("GUNICORN_THREADS", 4)

# With gthread, `timeout` is the worker's liveness deadline (its main loop
# reports in while threads stream request bodies), so it never cuts a long
# upload; it is generous anyway so a sync-worker override would not cut a
# 200 MB upload at ~2 Mbit/s either.
timeout = _env_int("GUNICORN_TIMEOUT", 900)
# On SIGTERM, requests in flight get this long to finish (supervisord's
# stopwaitsecs for "web" is a few seconds more).
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then; jitter keeps them from restarting together.
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10

# Behind a TLS-terminating platform proxy (FORCE_HTTPS), trust its
# X-Forwarded-* headers: the proxy's address is not fixed, and the app is
# reachable only through it. FORWARDED_ALLOW_IPS overrides.
forwarded_allow_ips = os.environ.get(
    "FORWARDED_ALLOW_IPS", "*" if _env_on("FORCE_HTTPS") else "127.0.0.1,::1"
)

# Heartbeat files in memory, not on a possibly slow overlay filesystem.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Logs: access log to stdout, errors to stderr (supervisord passes both on).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
proc_name = "the_flip-web"
