from django.http import HttpRequest

from the_flip.apps.accounts.decorators import is_maintainer

from .api import error
from .tus import TUS_VERSION


class ApiAuthMiddleware:
    """Refuse API calls from strangers before CSRF checks or upload parsing read the body.

    Sits between AuthenticationMiddleware and CsrfViewMiddleware. Views marked by
    ``api_view`` need a logged-in maintainer (a staff user). How large their bodies may be is
    request_limits.py's decision (it runs first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        response = self.get_response(request)
        # tus: every answer says the protocol version, refusals included (login, CSRF, and a
        # body too large, which RequestBodyLimitMiddleware refuses before our process_view).
        match = getattr(request, "resolver_match", None)
        if match is not None and getattr(match.func, "speaks_tus", False):
            response.setdefault("Tus-Resumable", TUS_VERSION)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if not getattr(view_func, "is_api_view", False):
            return None
        user = request.user
        if not user.is_authenticated:
            return error("Log in first: POST your username and password to /accounts/login/.", 401)
        if not is_maintainer(user):
            return error("Only maintainers can do this. Ask an admin to make you staff.", 403)
        return None
