from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .models import WorkerHeartbeat


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Cheap health check for platforms and uptime monitors: database, then worker."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        age = WorkerHeartbeat.age_seconds()
    except Exception as exc:  # any database failure means unhealthy, and says why
        return JsonResponse({"status": "error", "reason": f"database unreachable: {exc}"}, 503)
    body = {"status": "ok", "database": "ok", "worker_heartbeat_age": age}
    limit = settings.WORKER_HEARTBEAT_MAX_AGE
    if age is None:
        body.update(status="error", reason="the worker has never reported in")
    elif age > limit:
        body.update(
            status="error", reason=f"no worker heartbeat for {int(age)} s (limit {limit} s)"
        )
    return JsonResponse(body, status=200 if body["status"] == "ok" else 503)
