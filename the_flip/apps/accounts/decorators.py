from django.contrib.auth.decorators import user_passes_test


def is_maintainer(user) -> bool:
    """Maintainers are active staff users (a superuser made by createsuperuser is one)."""
    return user.is_authenticated and user.is_active and user.is_staff


# Not logged in (or not a maintainer): off to the login page, then back.
maintainer_required = user_passes_test(is_maintainer)
