"""Login throttling (django-axes): who is the client, and what a locked-out person sees.

Axes counts failed logins per username and per client address in the database (no Redis)
and refuses further attempts for LOGIN_LOCKOUT_MINUTES after LOGIN_FAILURE_LIMIT failures.
This module gives axes the client's address and the answer a locked-out person gets.
"""

import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

UNKNOWN_CLIENT = "0.0.0.0"


def client_ip(request: HttpRequest) -> str:
    """The address of whoever is on the other end.

    Behind our nginx (the request comes from a trusted proxy address, or over a unix socket,
    where gunicorn leaves REMOTE_ADDR empty), nginx's ``X-Real-IP`` (set from its
    ``$remote_addr``, replacing anything the client sent) or else the right-most
    ``X-Forwarded-For`` entry (the one nginx appended). From anywhere else the headers are the
    client's own words, so the peer address is used and the headers are ignored.
    """
    peer = request.META.get("REMOTE_ADDR", "")
    if peer and peer not in settings.TRUSTED_PROXY_IPS:
        return peer
    forwarded = request.META.get("HTTP_X_REAL_IP", "").strip() or (
        request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")[-1].strip()
    )
    try:
        return str(ipaddress.ip_address(forwarded))
    except ValueError:
        # No address at all (a unix socket without nginx's header, Django's force_login):
        # one shared bucket, under an address PostgreSQL's inet column accepts.
        return peer or UNKNOWN_CLIENT


def lockout_message() -> str:
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    return (
        f"Too many failed logins for this username or from this address; try again in "
        f"{minutes} minute{'s' if minutes != 1 else ''} or ask an admin to unlock you."
    )


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials=None
) -> HttpResponse:
    """429 with the login page and the sentence above (JSON for a client that asks for it),
    for the site's login and the admin's alike."""
    message = lockout_message()
    if request.get_preferred_type(["text/html", "application/json"]) == "application/json":
        return JsonResponse({"error": message}, status=429)
    return render(
        request,
        "registration/login.html",
        {"locked_out": message, "next": request.POST.get("next", "")},
        status=429,
    )
