"""Text made safe for a log line, a terminal or a failure record: untrusted text without control
characters, and no secret of any application's configuration."""

from __future__ import annotations

import logging
import re
import threading

#: The api keys and salts of every application set up in this process (``init_app`` adds them):
#: a receiver's error or a log line that quotes one shows ``***`` instead.
_secrets: set[str] = set()
_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None
#: ``api_key=...``, ``salt: ...``, ``"api_key": "..."`` and the like, whatever the value.
_ASSIGNED = re.compile(r"""((?:api[_-]?key|salt)["']?\s*[=:]\s*["']?)[^\s"'&,;}]+""", re.IGNORECASE)


def add_secrets(*secrets: str) -> None:
    """Redact these from now on (empty ones, such as an empty salt, are ignored)."""
    global _pattern
    with _lock:
        _secrets.update(secret for secret in secrets if secret)
        ordered = sorted(_secrets, key=len, reverse=True)
        _pattern = (
            re.compile("|".join(re.escape(secret) for secret in ordered)) if ordered else None
        )


def redact(text: str) -> str:
    """``text`` with every known secret, and any value written as ``api_key=...``, as ``***``."""
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub("***", text)
    return _ASSIGNED.sub(r"\1***", text)


class RedactSecrets(logging.Filter):
    """Redacts the secrets from the records of the extension's logger, message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            clean = redact(formatted)
            if clean != formatted:
                record.exc_info, record.exc_text = None, clean
        return True


def printable(value: object, limit: int | None = 64) -> str:
    """``value`` as text, cut to ``limit`` characters, every non-printable character (escape
    codes, newlines, other control characters) replaced by ``?``; ``-`` for None or empty."""
    if value is None:
        return "-"
    text = str(value)[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text or "-"
