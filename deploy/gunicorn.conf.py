"""gunicorn settings, all from the environment (the same file serves `make run` and the container).

gthread workers: a phone uploading 200 MB over weak Wi-Fi holds one thread, not a whole
worker, so the site stays responsive while uploads and video range requests are in flight.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from the_flip import sizing  # plain Python: no Django is loaded in the master

bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
# WEB_CONCURRENCY / GUNICORN_THREADS, else from the CPUs and memory we may use (the rule is in
# the_flip/sizing.py: 1 x 16 on a 1 CPU / 1 GB machine, 2 x 8 on 2 CPU / 2 GB).
workers = sizing.web_processes()
threads = sizing.web_threads()


def on_starting(server) -> None:
    server.log.info("sizing: %s", sizing.summary())


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
