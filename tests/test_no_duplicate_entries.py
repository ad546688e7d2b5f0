"""A maintainer taps submit twice, or the phone retries after a timeout: one log entry."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from the_flip.apps.maintenance.models import LogEntry

pytestmark = pytest.mark.django_db


def post_entry(client, machine, key: str | None, text: str = "Rebuilt the drop targets"):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return client.post("/api/log-entries/", {"machine": machine.pk, "text": text}, headers=headers)


def test_the_same_key_answers_the_first_entry(maintainer_client, machine):
    first = post_entry(maintainer_client, machine, "entry-4f1c")
    assert first.status_code == 201
    again = post_entry(maintainer_client, machine, "entry-4f1c")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert LogEntry.objects.count() == 1


def test_another_key_or_no_key_makes_another_entry(maintainer_client, machine):
    post_entry(maintainer_client, machine, "a")
    assert post_entry(maintainer_client, machine, "b").status_code == 201
    assert post_entry(maintainer_client, machine, None).status_code == 201
    assert post_entry(maintainer_client, machine, None).status_code == 201
    assert LogEntry.objects.count() == 4


def test_keys_belong_to_one_maintainer(maintainer_client, machine, django_user_model):
    post_entry(maintainer_client, machine, "same")
    other = django_user_model.objects.create_user(username="bo", password="pw-x", is_staff=True)
    maintainer_client.force_login(other)
    assert post_entry(maintainer_client, machine, "same").status_code == 201
    assert LogEntry.objects.count() == 2


def test_a_key_older_than_a_day_makes_a_new_entry(maintainer_client, machine):
    post_entry(maintainer_client, machine, "yesterday")
    LogEntry.objects.update(created_at=timezone.now() - timedelta(hours=25))
    assert post_entry(maintainer_client, machine, "yesterday").status_code == 201
    assert LogEntry.objects.count() == 2


def test_an_overlong_key_is_refused(maintainer_client, machine):
    response = post_entry(maintainer_client, machine, "k" * 256)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]


@pytest.mark.django_db(transaction=True)
def test_two_posts_racing_with_one_key_make_one_entry(client, maintainer, machine):
    """Two threads post at once (each its own database connection), as a double tap does."""
    if connection.vendor == "sqlite":
        pass  # SQLite serialises writers; the unique constraint still decides
    answers = []
    barrier = threading.Barrier(4)

    def tap() -> None:
        from django.test import Client

        phone = Client()
        phone.force_login(maintainer)
        barrier.wait()
        answers.append(post_entry(phone, machine, "double-tap").status_code)
        connection.close()

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200, 200, 200, 201]
    assert LogEntry.objects.filter(idempotency_key="double-tap").count() == 1
    assert LogEntry.objects.count() == 1


def test_the_plain_form_submitted_twice_makes_one_entry(maintainer_client, machine):
    """Without JavaScript: the form carries its own key, so a second submit (double tap, or
    the browser's resubmit) lands on the same entry."""
    page = maintainer_client.get(f"/machines/{machine.slug}/log/new/").content.decode()
    key = page.split('name="idempotency_key" value="')[1].split('"')[0]
    form = {"text": "Adjusted the tilt bob", "idempotency_key": key}
    first = maintainer_client.post(f"/machines/{machine.slug}/log/new/", form)
    second = maintainer_client.post(f"/machines/{machine.slug}/log/new/", form)
    [entry] = LogEntry.objects.all()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == entry.get_absolute_url()
    fresh = maintainer_client.get(f"/machines/{machine.slug}/log/new/").content.decode()
    assert key not in fresh  # a new form is a new entry
