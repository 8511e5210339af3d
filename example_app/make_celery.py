"""The Celery worker's entry point: ``celery -A example_app.make_celery worker``."""

from __future__ import annotations

from . import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
