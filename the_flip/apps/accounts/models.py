from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A maintainer is an active staff user (see accounts.decorators).

    Email is optional, so `createsuperuser --noinput` needs only DJANGO_SUPERUSER_USERNAME and
    DJANGO_SUPERUSER_PASSWORD.
    """

    REQUIRED_FIELDS = []
