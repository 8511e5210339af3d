"""``celery -A make_celery worker``: the Celery app of ``yourapp``."""

from yourapp import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
