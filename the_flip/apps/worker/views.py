import logging

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .health import quick_problems

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Cheap health check for platforms and uptime monitors (hit every ~10 s): the database
    answers, the worker shows signs of life, and no video is stuck. 503 with the reason
    otherwise. No login, no session."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        problems, facts = quick_problems()
    except Exception:  # any database failure means unhealthy
        # Anyone may read /healthz: the details (host, user, driver message) go to the log.
        logger.exception("healthz: the database is unreachable")
        return JsonResponse({"status": "error", "reason": "database unreachable"}, status=503)
    body = {"status": "ok", "database": "ok", **facts}
    if problems:
        body.update(status="error", reason="; ".join(problems))
    return JsonResponse(body, status=503 if problems else 200)
