"""A coroutine receiver: needs pip install 'flask[async]'."""

from __future__ import annotations

import asyncio
from typing import Any

from flask import Flask

from flask_voxcallbacks import Callback, SmsInbound, sms_received

replies: list[str] = []


async def reply_to_sms(
    sender: Flask,
    callback: Callback[SmsInbound],
    **extra: Any,
) -> None:
    await asyncio.sleep(0)  # an awaitable call to your SMS provider, say
    replies.append(callback.payload.source_number or "")


def connect(app: Flask) -> None:
    sms_received.connect(reply_to_sms, sender=app)
