from django.http import HttpRequest

from .views import healthz


class HealthCheckMiddleware:
    """Answer GET /healthz before anything can refuse it.

    Platform health checks arrive over plain HTTP with whatever Host header the platform likes
    (an internal IP, `healthcheck.railway.app`), so they must pass neither the HTTPS redirect
    nor the ALLOWED_HOSTS check. First in MIDDLEWARE.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path == "/healthz" and request.method in ("GET", "HEAD"):
            return healthz(request)
        return self.get_response(request)
