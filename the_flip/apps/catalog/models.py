from django.db import models
from django.urls import reverse
from django.utils.text import slugify


class Machine(models.Model):
    """A pinball machine on the museum floor."""

    name = models.CharField(max_length=200, unique=True)
    slug = models.SlugField(max_length=200, unique=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def name_problem(cls, name: str) -> str | None:
        """Why ``name`` can't be a new machine's name, in plain words; None when it can."""
        if not name:
            return "Give the machine a name."
        if len(name) > cls._meta.get_field("name").max_length:
            return "That name is too long (200 characters at most)."
        if cls.objects.filter(name__iexact=name).exists():
            return f"There is already a machine called “{name}”."
        return None

    def save(self, *args, **kwargs) -> None:
        if not self.slug:
            self.slug = self._unique_slug()
        super().save(*args, **kwargs)

    def _unique_slug(self) -> str:
        base = slugify(self.name)[:180] or "machine"
        slug, n = base, 2
        while Machine.objects.filter(slug=slug).exclude(pk=self.pk).exists():
            slug, n = f"{base}-{n}", n + 1
        return slug

    def get_absolute_url(self) -> str:
        return reverse("machine-detail", args=[self.slug])

    def as_json(self) -> dict:
        return {"id": self.pk, "name": self.name}
