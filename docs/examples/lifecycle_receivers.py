"""Timing handlers and counting failures with the lifecycle signals."""

import logging
import time
from typing import Any

from flask import Flask

from flask_voxcallbacks import (
    Callback,
    Payload,
    callback_completed,
    callback_failed,
    job_started,
)

logger = logging.getLogger(__name__)


def on_completed(
    sender: Flask, callback: Callback[Payload], **extra: Any
) -> None:
    seconds = extra["duration"]
    logger.info("%s handled in %.3f s", callback.type, seconds)


def on_failed(sender: Flask, **extra: Any) -> None:
    logger.warning(
        "callback %s failed: %s", extra["callback_id"], extra["errors"]
    )


def on_job(sender: Flask, **extra: Any) -> None:
    waited = time.time() - extra["kept_at"]
    logger.info("callback %s waited %.1f s", extra["callback_id"], waited)


def connect(app: Flask) -> None:
    callback_completed.connect(on_completed, sender=app)
    callback_failed.connect(on_failed, sender=app)
    job_started.connect(on_job, sender=app)
