"""The admin: task records with filters, and Retry on failed videos from either list."""

import pytest
from django.utils import timezone

from the_flip.apps.worker.models import TaskRecord

from .worker_helpers import flush_queue, make_video, queued_ids

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.org", "pw-12345678")
    client.force_login(admin)
    flush_queue()
    yield client
    flush_queue()


def test_task_records_list_filters_by_state_and_date(admin_client, machine):
    media = make_video(machine, status="failed", error="The video could not be converted.")
    TaskRecord.objects.create(task_id="a", task_name="transcode_media", media=media,
                              state="failed", attempt=1, enqueued_at=timezone.now(),
                              error="The video could not be converted.",
                              stderr_tail="Invalid data found")  # fmt: skip
    TaskRecord.objects.create(task_id="b", task_name="transcode_media", state="succeeded",
                              enqueued_at=timezone.now())  # fmt: skip
    url = "/admin/worker/taskrecord/"
    page = admin_client.get(url, {"state__exact": "failed"})
    assert page.status_code == 200
    assert page.context["cl"].result_count == 1
    assert b"The video could not be converted." in page.content
    assert admin_client.get(url, {"enqueued_at__year": timezone.now().year}).status_code == 200
    record = TaskRecord.objects.get(task_id="a")
    assert b"Invalid data found" in admin_client.get(f"{url}{record.pk}/change/").content


def test_retry_action_from_task_records_and_from_media(
    admin_client, machine, django_capture_on_commit_callbacks
):
    failed = make_video(machine, status="failed", attempts=3, error="We tried 3 times")
    ready = make_video(machine, status="ready")
    records = [
        TaskRecord.objects.create(
            task_id=f"r{m.pk}", task_name="transcode_media", media=m, state="failed"
        )
        for m in (failed, ready)
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/worker/taskrecord/",
            {"action": "retry_media", "_selected_action": [r.pk for r in records]},
            follow=True,
        )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert "Queued 1 video(s) again." in messages
    assert (
        "Only failed videos whose original is still stored can be retried; skipped 1." in messages
    ), "the admin says why the ready one was left alone"
    failed.refresh_from_db()
    assert (failed.transcode_status, failed.attempts) == ("pending", 0)
    assert queued_ids() == [failed.pk]

    again = make_video(machine, status="failed", attempts=3)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(
            "/admin/maintenance/logentrymedia/",
            {"action": "retry", "_selected_action": [again.pk]},
        )
    again.refresh_from_db()
    assert again.transcode_status == "pending"
    assert again.pk in queued_ids()
