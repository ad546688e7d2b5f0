from django.http import HttpRequest

from the_flip.apps.accounts.decorators import is_maintainer

from .api import error


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
        if getattr(request, "speaks_tus", False):
            # tus: every answer says the protocol version, refusals (login, CSRF) included.
            response.setdefault("Tus-Resumable", "1.0.0")
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if not getattr(view_func, "is_api_view", False):
            return None
        request.speaks_tus = getattr(view_func, "speaks_tus", False)
        user = request.user
        if not user.is_authenticated:
            return error("Log in first: POST your username and password to /accounts/login/.", 401)
        if not is_maintainer(user):
            return error("Only maintainers can do this. Ask an admin to make you staff.", 403)
        return None
