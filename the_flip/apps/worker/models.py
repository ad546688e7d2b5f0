from django.db import models
from django.utils import timezone


class WorkerHeartbeat(models.Model):
    """One row, touched by the consumer every minute: proof the worker is alive."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    beat_at = models.DateTimeField()
    pid = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return f"worker heartbeat at {self.beat_at:%Y-%m-%d %H:%M:%S}"

    @classmethod
    def beat(cls, pid: int | None = None) -> None:
        cls.objects.update_or_create(id=1, defaults={"beat_at": timezone.now(), "pid": pid})

    @classmethod
    def age_seconds(cls) -> float | None:
        beat = cls.objects.filter(id=1).values_list("beat_at", flat=True).first()
        return None if beat is None else (timezone.now() - beat).total_seconds()
