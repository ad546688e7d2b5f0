from django.contrib import admin
from django.urls import include, path

from the_flip.apps.maintenance import api, serving, tus, views
from the_flip.apps.worker.views import healthz

# Errors answer JSON on /api/ (the contract), Django's pages elsewhere: a body Django
# refuses to parse, an unknown URL, a crash.
handler400 = api.bad_request
handler404 = api.not_found
handler500 = api.server_error

admin.site.site_header = "the_flip admin"
admin.site.site_title = "the_flip"

api_patterns = [
    path("machines/", api.machines, name="api-machines"),
    path("log-entries/", api.create_log_entry, name="api-log-entries"),
    path("log-entries/<int:entry_id>/media/", api.add_media, name="api-log-entry-media"),
    path("log-entries/<int:entry_id>/uploads/", tus.uploads, name="api-uploads"),
    path(
        "log-entries/<int:entry_id>/uploads/<uuid:upload_id>/",
        tus.upload_detail,
        name="api-upload",
    ),
    path("media/<int:media_id>/", api.media_detail, name="api-media-detail"),
    path("media/<int:media_id>/retry/", api.retry_media, name="api-media-retry"),
    path("media/<int:media_id>/tile/", api.media_tile, name="api-media-tile"),
]

urlpatterns = [
    path("", views.machine_list, name="machine-list"),
    path("machines/<slug:slug>/", views.machine_detail, name="machine-detail"),
    path("machines/<slug:slug>/log/new/", views.log_entry_new, name="log-entry-new"),
    path("logs/<int:pk>/", views.log_entry_detail, name="log-entry-detail"),
    path("media/<path:path>", serving.serve_media, name="media-file"),
    path("api/", include(api_patterns)),
    path("healthz", healthz, name="healthz"),
    path("accounts/", include("the_flip.apps.accounts.urls")),
    path("admin/", admin.site.urls),
]
