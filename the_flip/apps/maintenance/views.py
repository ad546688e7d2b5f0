"""Server-rendered pages. Uploads from the page go through the JSON API (uploader.js);
the plain form posts below are the no-JavaScript fallback and share the same validation."""

import json
import logging

from django.contrib import messages
from django.db.models import Count, Max, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from the_flip.apps.accounts.decorators import maintainer_required
from the_flip.apps.catalog.models import Machine
from the_flip.storage import STORE_ERRORS

from . import idempotency
from .api import STORE_UNAVAILABLE
from .models import LogEntry, LogEntryMedia
from .request_limits import takes_uploads
from .uploads import (
    ACCEPT,
    MAX_FILES_PER_REQUEST,
    UploadRejected,
    max_upload_mb,
    too_large_message,
    upload_rules,
)

log = logging.getLogger(__name__)

# The upload inputs' context; callables, so a changed setting shows (the tests change it).
UPLOAD_CONTEXT = {
    "max_upload_mb": max_upload_mb,
    "accept": ACCEPT,
    "upload_rules": lambda: json.dumps(upload_rules()),  # uploader.js: data-upload-rules
}


@maintainer_required
@require_http_methods(["GET", "POST"])
def machine_list(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        problem = Machine.name_problem(name)
        if problem is None:
            return redirect(Machine.objects.create(name=name))
        messages.error(request, problem)
        return redirect("machine-list")
    machines = Machine.objects.annotate(
        entry_count=Count("log_entries"), last_entry=Max("log_entries__created_at")
    )
    return render(request, "maintenance/machine_list.html", {"machines": machines})


@maintainer_required
def machine_detail(request: HttpRequest, slug: str) -> HttpResponse:
    machine = get_object_or_404(Machine, slug=slug)
    entries = machine.log_entries.select_related("author").prefetch_related(
        Prefetch("media", queryset=LogEntryMedia.objects.order_by("created_at", "id"))
    )
    return render(
        request, "maintenance/machine_detail.html", {"machine": machine, "entries": entries}
    )


@takes_uploads(MAX_FILES_PER_REQUEST)
@maintainer_required
@require_http_methods(["GET", "POST"])
def log_entry_new(request: HttpRequest, slug: str) -> HttpResponse:
    machine = get_object_or_404(Machine, slug=slug)
    context = {
        "machine": machine,
        "max_files": MAX_FILES_PER_REQUEST,
        # One key per rendered form: submitting it twice makes one entry.
        "idempotency_key": idempotency.new_key(),
        **UPLOAD_CONTEXT,
    }
    if request.method == "POST":
        if getattr(request, "upload_too_large", False):
            messages.error(request, too_large_message())
            return render(request, "maintenance/log_entry_form.html", context, status=413)
        try:
            entry, _, _ = idempotency.create_entry_once(
                machine=machine,
                author=request.user,
                text=request.POST.get("text", ""),
                uploads=request.FILES.getlist("media"),
                key=request.POST.get("idempotency_key", ""),
            )
        except UploadRejected as rejected:
            messages.error(request, str(rejected))
            return render(request, "maintenance/log_entry_form.html", context, status=400)
        except STORE_ERRORS:  # the bucket did not answer: the transaction rolled back
            log.warning("file store unavailable during a new entry's upload", exc_info=True)
            messages.error(request, STORE_UNAVAILABLE)
            return render(request, "maintenance/log_entry_form.html", context, status=503)
        return redirect(entry)
    return render(request, "maintenance/log_entry_form.html", context)


@maintainer_required
def log_entry_detail(request: HttpRequest, pk: int) -> HttpResponse:
    entry = get_object_or_404(LogEntry.objects.select_related("machine", "author"), pk=pk)
    return render(
        request,
        "maintenance/log_entry_detail.html",
        {"entry": entry, "media": entry.media.order_by("created_at", "id"), **UPLOAD_CONTEXT},
    )
