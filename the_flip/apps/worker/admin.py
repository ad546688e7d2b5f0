from django.contrib import admin

from the_flip.apps.maintenance.admin import retry_and_report

from .models import TaskRecord, WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(admin.ModelAdmin):
    list_display = ["worker", "host", "pid", "started_at", "beat_at"]


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    """The worker's history: every transcode attempt and every failed chore (pruned hourly)."""

    list_display = [
        "id",
        "task_name",
        "state",
        "media",
        "attempt",
        "enqueued_at",
        "started_at",
        "duration_s",
        "short_error",
    ]
    list_filter = ["state", "task_name", "enqueued_at", "finished_at"]
    date_hierarchy = "enqueued_at"
    search_fields = ["task_id", "error", "stderr_tail", "media__id"]
    list_select_related = ["media"]
    readonly_fields = [f.name for f in TaskRecord._meta.fields]
    actions = ["retry_media"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="duration", ordering="duration")
    def duration_s(self, record: TaskRecord) -> str:
        return "—" if record.duration is None else f"{record.duration:.1f} s"

    @admin.display(description="error")
    def short_error(self, record: TaskRecord) -> str:
        return record.error[:100]

    @admin.action(description="Retry the videos of the selected records (failed videos only)")
    def retry_media(self, request, queryset) -> None:
        media = {record.media for record in queryset.select_related("media") if record.media}
        retry_and_report(self, request, media)
