"""A readiness endpoint for a load balancer or Kubernetes."""

from flask import Blueprint, Flask, jsonify
from flask.typing import ResponseReturnValue

from flask_voxcallbacks import VoxCallbacks

vox = VoxCallbacks()
health = Blueprint("health", __name__)


@health.get("/ready")
def ready() -> ResponseReturnValue:
    verdict = vox.check_ready()
    # The reasons name the part at fault, never a secret.
    body = {"ready": verdict.ready, "errors": list(verdict.errors)}
    return jsonify(body), 200 if verdict.ready else 503


def create_app(config: dict[str, object]) -> Flask:
    app = Flask(__name__)
    app.config.update(config)
    vox.init_app(app)
    app.register_blueprint(health)
    return app
