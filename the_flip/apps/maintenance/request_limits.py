"""How large a request body may be: the one place that decides it, for every view.

A body is refused before a byte of it is read unless the view takes uploads **and** the user is
a maintainer. Everyone and everything else (login, logout, admin, JSON calls, every page) gets
REQUEST_BODY_MAX_BYTES (1 MB); an upload view gives a maintainer ``uploads.request_cap``:
MAX_UPLOAD_BYTES per file it takes (``takes_uploads``) plus room for the multipart framing.

Two walls use this decision:
- nginx, the outer one (deploy/nginx.conf, rendered by ``manage.py run_nginx``): the small cap
  everywhere, the upload cap on the URLs of upload views (``upload_routes``), and there an
  ``auth_request`` to ``/_body_gate`` (``body_gate``) asks Django whether this user may send
  this many bytes before nginx reads (and buffers to disk) the body;
- ``RequestBodyLimitMiddleware``, the inner one, for gunicorn without nginx and for tests.
Either way the answer is 413 with a sentence: JSON on /api/, a plain page elsewhere.
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from django.utils.html import escape

from the_flip.apps.accounts.decorators import is_maintainer

from .uploads import request_cap, too_large_message

# nginx's auth_request subrequest (deploy/nginx.conf); never reachable from outside nginx.
GATE_PATH = "/_body_gate"


def takes_uploads(max_files: int) -> Callable:
    """Mark a view that takes up to ``max_files`` uploaded files from a maintainer."""

    def mark(view: Callable) -> Callable:
        view.max_upload_files = max_files
        return view

    return mark


def upload_files(view_func) -> int:
    """How many files the view takes (0: not an upload view). ``functools.wraps`` carries the
    mark through the other decorators."""
    return int(getattr(view_func, "max_upload_files", 0) or 0)


def body_cap(user, view_func) -> int:
    """The most bytes of body this user may send to this view."""
    files = upload_files(view_func)
    if files and user.is_authenticated and is_maintainer(user):
        return request_cap(files)
    return settings.REQUEST_BODY_MAX_BYTES


def body_too_large_message() -> str:
    limit = settings.REQUEST_BODY_MAX_BYTES
    size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit // 1024} KB"
    return (
        f"This request is larger than {size}, the most accepted here. Only a maintainer who "
        "is logged in can send photos and videos, to the page or API that takes them."
    )


def too_large_response(path: str, message: str) -> HttpResponse:
    """413 in the shape the address speaks: JSON on /api/, a plain page elsewhere."""
    if path.startswith("/api/"):
        response = JsonResponse({"error": message}, status=413)
    else:
        response = HttpResponse(too_large_page(message), status=413)
    response["Connection"] = "close"  # the body was not read
    return response


def too_large_page(message: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Too large</title></head><body><h1>Too large</h1>"
        f'<p>{escape(message)}</p><p><a href="/">Back to the machines</a></p></body></html>'
    )


def declared_length(meta: dict, key: str = "CONTENT_LENGTH") -> int | None:
    """The body's declared length; None when unknown (chunked) or not a number."""
    value = (meta.get(key) or "").strip()
    return int(value) if value.isdigit() else None


class RequestBodyLimitMiddleware:
    """The inner wall: refuse a body over ``body_cap`` before anything reads it, and answer
    nginx's ``/_body_gate`` question with the same decision.

    Sits after SessionMiddleware and before CommonMiddleware (nginx's question must not be
    refused by the ALLOWED_HOSTS check: it carries the client's Host, and answers nothing but
    allowed or not) and before CsrfViewMiddleware, which reads the form to find its token.
    A maintainer's multipart upload over the cap goes on to the upload handler, which refuses
    it unread too and lets the view say so in its own words (the page re-renders its form).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if request.path == GATE_PATH:
            return body_gate(request)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        cap = body_cap(request.user, view_func)
        request.upload_request_cap = cap  # CappedUploadHandler's bound for the whole request
        length = declared_length(request.META) or 0
        if length <= cap:
            return None
        if cap > settings.REQUEST_BODY_MAX_BYTES and request.content_type == "multipart/form-data":
            return None
        if cap > settings.REQUEST_BODY_MAX_BYTES:
            return too_large_response(request.path, too_large_message())
        return too_large_response(request.path, body_too_large_message())


def body_gate(request: HttpRequest) -> HttpResponse:
    """nginx asks, before it reads a body for an upload URL: may this client send it?

    204: yes (nginx reads it and passes the request on); 403: no (nginx answers 413 with
    ``body_too_large_message`` and never reads the body). The original request's path,
    declared length and Transfer-Encoding arrive in X-Body-Gate-Uri, X-Body-Gate-Length and
    X-Body-Gate-Transfer-Encoding.
    """
    path = unquote(urlsplit(request.META.get("HTTP_X_BODY_GATE_URI", "")).path)
    try:
        view_func = resolve(path).func
    except Resolver404:
        view_func = None
    cap = body_cap(get_user(request), view_func)
    length = declared_length(request.META, "HTTP_X_BODY_GATE_LENGTH")
    if length is None and not request.META.get("HTTP_X_BODY_GATE_TRANSFER_ENCODING"):
        length = 0  # neither a length nor a chunked body: no body (a GET, a HEAD, a DELETE)
    # A chunked body (no length) is only for those who may send a large one; nginx still
    # stops it at the location's client_max_body_size.
    allowed = length <= cap if length is not None else cap > settings.REQUEST_BODY_MAX_BYTES
    return HttpResponse(status=204 if allowed else 403)


@dataclass(frozen=True)
class UploadRoute:
    """A URL of an upload view, for nginx: its path regex (PCRE), body cap, and whether it
    answers JSON (under /api/)."""

    regex: str
    cap: int
    is_api: bool


def upload_routes() -> list[UploadRoute]:
    """Every URL whose view takes uploads, from Django's URLconf, so nginx's upload locations
    follow the views and never a copy of their URLs."""
    routes: list[UploadRoute] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + _path_regex(pattern.pattern.regex.pattern))
            elif isinstance(pattern, URLPattern) and upload_files(pattern.callback):
                path = prefix + _path_regex(pattern.pattern.regex.pattern)
                routes.append(
                    UploadRoute(
                        regex=f"^/{path}$",
                        cap=request_cap(upload_files(pattern.callback)),
                        is_api=path.startswith("api/"),
                    )
                )

    walk(get_resolver().url_patterns, "")
    return routes


def _path_regex(python_regex: str) -> str:
    """One piece of a Django URL regex as PCRE: no anchors, unnamed groups."""
    piece = python_regex.removeprefix("^").removesuffix(r"\Z").removesuffix("$")
    return re.sub(r"\(\?P<\w+>", "(?:", piece)


def nginx_string(text: str) -> str:
    """``text`` as a single-quoted nginx string (for ``return 413 '...'``)."""
    if "$" in text:
        raise ValueError("nginx would read $ in a return text as a variable")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def json_error(message: str) -> str:
    return json.dumps({"error": message})
