"""Test settings: a throwaway DATA_DIR, fast password hashing, and real (not immediate) huey.

Tests that run a real consumer start it as a subprocess with THE_FLIP_TEST_DB_NAME set to the
test database's name, so both processes share the rows the test wrote.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="the_flip_test_"))
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 30)

from .base import *  # noqa: F403
from .base import DATA_DIR, DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Media: base's choice (local folder, or the bucket when a test's subprocess has BUCKET_NAME).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so a worker subprocess can open the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test-db.sqlite3")}
if os.environ.get("THE_FLIP_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["THE_FLIP_TEST_DB_NAME"]
if os.environ.get("THE_FLIP_TEST_MEDIA_ROOT"):  # a consumer subprocess following one test
    MEDIA_ROOT = Path(os.environ["THE_FLIP_TEST_MEDIA_ROOT"])

STATIC_ROOT = DATA_DIR / "static"  # whitenoise wants the folder to exist
STATIC_ROOT.mkdir(exist_ok=True)
