"""gunicorn settings, all from the environment (the same file serves `make run` and the container).

gthread workers: a phone uploading 200 MB over weak Wi-Fi holds one thread, not a whole
worker, so the site stays responsive while uploads and video range requests are in flight.
"""

import os

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# With gthread the timeout only catches a hung worker *process* (its main loop keeps
# notifying the arbiter while threads serve requests), so a 27-minute 200 MB upload over
# 1 Mbit/s is not cut off by it.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Fly.io and Railway terminate TLS in a proxy in front of us and say so in X-Forwarded-Proto.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
