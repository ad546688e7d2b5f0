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
