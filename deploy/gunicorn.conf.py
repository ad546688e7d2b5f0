"""gunicorn settings, all from the environment (the same file serves `make run` and the container).

Behind nginx (deploy/start sets THE_FLIP_WEB_SOCKET): gunicorn listens on that unix socket
only, and nginx hands it complete requests (bodies already buffered, slow clients held by
nginx), so a thread is busy for the milliseconds Django needs, not for a phone's upload.
Without it (gunicorn started by hand) it listens on BIND_HOST:PORT as before.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from the_flip import sizing  # plain Python: no Django is loaded in the master

WEB_SOCKET = os.environ.get("THE_FLIP_WEB_SOCKET", "")
if WEB_SOCKET:
    bind = f"unix:{WEB_SOCKET}"  # in a folder only this user may enter (deploy/start)
else:
    bind = f"{os.environ.get('BIND_HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
# WEB_CONCURRENCY / GUNICORN_THREADS, else from the CPUs and memory we may use (the rule is in
# the_flip/sizing.py: 1 x 16 on a 1 CPU / 1 GB machine, 2 x 8 on 2 CPU / 2 GB).
workers = sizing.web_processes()
threads = sizing.web_threads()


def on_starting(server) -> None:
    server.log.info("sizing: %s", sizing.summary())


# With gthread the timeout only catches a hung worker *process* (its main loop keeps
# notifying the arbiter while threads serve requests). Slow uploads never reach it: nginx
# holds them until the body is whole.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# X-Forwarded-Proto (the platform's TLS proxy, relayed by nginx): gunicorn trusts it from the
# unix socket (only nginx connects there); on TCP only from this machine.
forwarded_allow_ips = "127.0.0.1,::1"
# nginx logs every request (deploy/nginx.conf); gunicorn logs them only when it is alone.
accesslog = None if WEB_SOCKET else "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
