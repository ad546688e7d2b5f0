from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from .health import quick_problems


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Cheap health check for platforms and uptime monitors (hit every ~10 s): the database
    answers, the worker shows signs of life, and no video is stuck. 503 with the reason
    otherwise. No login, no session."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        problems, facts = quick_problems()
    except Exception as exc:  # any database failure means unhealthy, and says why
        body = {"status": "error", "reason": f"database unreachable: {exc}"}
        return JsonResponse(body, status=503)
    body = {"status": "ok", "database": "ok", **facts}
    if problems:
        body.update(status="error", reason="; ".join(problems))
    return JsonResponse(body, status=503 if problems else 200)
