"""Only the account pages that work here: log in, log out, change your password.

No password reset: the site sends no mail, so a reset form would promise an email that never
comes (and let strangers probe usernames). An admin sets a new password in /admin/ instead.
"""

from django.contrib.auth import views as auth_views
from django.urls import path

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
]
