"""Sentry set-up shared by the web and the worker (both load Django settings, so both call this)."""

import os

import sentry_sdk
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.huey import HueyIntegration
from sentry_sdk.integrations.logging import LoggingIntegration


def init_sentry(dsn: str) -> None:
    sentry_sdk.init(
        dsn=dsn,
        integrations=[DjangoIntegration(), HueyIntegration(), LoggingIntegration(event_level=None)],
        release=os.environ.get("SENTRY_RELEASE") or os.environ.get("FLY_IMAGE_REF") or None,
        environment=os.environ.get("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0")),
        send_default_pii=False,
    )
