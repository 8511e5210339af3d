"""Flask's Celery pattern: the Celery app lives in ``app.extensions["celery"]`` and runs every
task in the application's context. Workers start with ``celery -A example_app.make_celery
worker``."""

from __future__ import annotations

from celery import Celery, Task  # type: ignore[import-untyped]
from flask import Flask


def celery_init_app(app: Flask) -> Celery:
    """Set up the Celery app from ``app.config["CELERY"]``."""

    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
