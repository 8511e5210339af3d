"""Show the extension's log lines (INFO and up) with Flask's own."""

from __future__ import annotations

import logging

from flask.logging import default_handler


def show_callback_log_lines(level: int = logging.INFO) -> logging.Logger:
    logger = logging.getLogger("flask_voxcallbacks")
    logger.setLevel(level)
    if default_handler not in logger.handlers:
        logger.addHandler(default_handler)
    return logger
