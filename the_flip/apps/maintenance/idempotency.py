"""Creating a log entry at most once per Idempotency-Key.

A maintainer taps "Save" twice, or the phone retries after a timeout: the same key from the
same maintainer within IDEMPOTENCY_KEY_HOURS answers the entry its first request created. The
key lives on the entry (``LogEntry.idempotency_key``) under a unique constraint per author, so
two racing requests cannot both insert: the loser's insert fails before it stores any file,
and it answers the winner's entry. The JSON API takes the key from the ``Idempotency-Key``
header; the no-JavaScript form carries one per form it renders (a hidden field), which the
page's script sends as the header.
"""

import secrets

from django.db import IntegrityError

from . import attachments
from .models import LogEntry, LogEntryMedia

MAX_KEY_LENGTH = 255


def new_key() -> str:
    """A key for one new-entry form."""
    return secrets.token_urlsafe(18)


def create_entry_once(
    *, machine, author, text: str, uploads: list, key: str
) -> tuple[LogEntry, list[LogEntryMedia], bool]:
    """attachments.create_entry, unless ``key`` (when not empty) already made an entry.
    Returns (entry, media, created)."""
    key = key.strip()[:MAX_KEY_LENGTH]
    if key and (earlier := LogEntry.created_with_key(author, key)):
        return earlier, list(earlier.media.all()), False
    try:
        entry, media = attachments.create_entry(
            machine=machine, author=author, text=text, uploads=uploads, idempotency_key=key
        )
    except IntegrityError:
        # A request with the same key won the race (its insert came first).
        earlier = LogEntry.created_with_key(author, key) if key else None
        if earlier is None:
            raise
        return earlier, list(earlier.media.all()), False
    return entry, media, True
