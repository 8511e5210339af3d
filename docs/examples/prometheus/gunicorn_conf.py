"""gunicorn -c gunicorn_conf.py 'metrics_app:create_app()'"""

from typing import Any

from flask_voxcallbacks.metrics import mark_process_dead

workers = 2


def child_exit(server: Any, worker: Any) -> None:
    mark_process_dead(worker.pid)
