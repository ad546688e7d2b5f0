from django.contrib import admin, messages
from django.utils.html import format_html

from . import attachments
from .models import LogEntry, LogEntryMedia, PartialUpload


class LogEntryMediaInline(admin.TabularInline):
    model = LogEntryMedia
    fields = ["kind", "transcode_status", "progress", "error", "original_name"]
    readonly_fields = fields
    extra = 0
    can_delete = True
    show_change_link = True


@admin.register(LogEntry)
class LogEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "machine", "author", "created_at", "short_text", "media_count"]
    list_filter = ["machine", "created_at"]
    search_fields = ["text", "machine__name"]
    date_hierarchy = "created_at"
    list_select_related = ["machine", "author"]
    inlines = [LogEntryMediaInline]

    @admin.display(description="text")
    def short_text(self, entry: LogEntry) -> str:
        return entry.text[:80]

    @admin.display(description="media")
    def media_count(self, entry: LogEntry) -> int:
        return entry.media.count()


@admin.register(LogEntryMedia)
class LogEntryMediaAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "transcode_status",
        "progress",
        "attempts",
        "duration",
        "size",
        "log_entry",
        "error",
        "updated_at",
    ]
    list_filter = ["kind", "transcode_status", "created_at"]
    search_fields = ["original_name", "error", "source_summary", "log_entry__machine__name"]
    list_select_related = ["log_entry__machine"]
    readonly_fields = [
        "log_entry",
        "kind",
        "file",
        "transcoded_file",
        "poster_file",
        "preview",
        "original_name",
        "original_size",
        "transcode_status",
        "progress",
        "duration",
        "width",
        "height",
        "attempts",
        "worker",
        "source_summary",
        "error",
        "error_detail",
        "processing_started_at",
        "heartbeat_at",
        "created_at",
        "updated_at",
    ]
    actions = ["retry"]

    @admin.display(description="size")
    def size(self, media: LogEntryMedia) -> str:
        return f"{media.width}×{media.height}" if media.width else "—"

    @admin.display(description="preview")
    def preview(self, media: LogEntryMedia) -> str:
        url = media.poster_url or media.photo_url
        return format_html('<img src="{}" style="max-width:320px">', url) if url else "—"

    @admin.action(description="Retry the selected failed videos")
    def retry(self, request, queryset) -> None:
        retry_and_report(self, request, queryset)


def retry_and_report(model_admin: admin.ModelAdmin, request, media) -> None:
    """The admin's Retry (the media list's and the task log's): retry each, say what
    happened and why some were left alone."""
    media = list(media)
    retried = sum(1 for item in media if attachments.retry(item))
    model_admin.message_user(request, f"Queued {retried} video(s) again.", messages.SUCCESS)
    skipped = len(media) - retried
    if skipped or not media:
        model_admin.message_user(
            request,
            "Only failed videos whose original is still stored can be retried"
            + (f"; skipped {skipped}." if skipped else "."),
            messages.WARNING,
        )


@admin.register(PartialUpload)
class PartialUploadAdmin(admin.ModelAdmin):
    """Resumable uploads on their way in; the list's title says how much they hold."""

    list_display = ["filename", "owner", "log_entry", "progress", "updated_at", "expires_at"]
    list_select_related = ["owner", "log_entry__machine"]
    readonly_fields = [f.name for f in PartialUpload._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="stored")
    def progress(self, upload: PartialUpload) -> str:
        return f"{upload.offset / 1048576:.1f} of {upload.length / 1048576:.1f} MB"

    def changelist_view(self, request, extra_context=None):
        totals = PartialUpload.totals()
        title = (
            f"Partial uploads: {totals['count']} unfinished, "
            f"holding {totals['bytes'] / 1048576:.1f} MB"
        )
        return super().changelist_view(request, {**(extra_context or {}), "title": title})
