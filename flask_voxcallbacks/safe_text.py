"""Untrusted text made safe for a log line or a terminal."""

from __future__ import annotations


def printable(value: object, limit: int | None = 64) -> str:
    """``value`` as text, cut to ``limit`` characters, every non-printable character (escape
    codes, newlines, other control characters) replaced by ``?``; ``-`` for None or empty."""
    if value is None:
        return "-"
    text = str(value)[:limit]
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text or "-"
