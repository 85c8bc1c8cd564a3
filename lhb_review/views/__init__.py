"""Blueprints for people."""
from flask import Flask


def register(app: Flask) -> None:
    from . import assets, auth, queue

    app.register_blueprint(auth.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(assets.bp)

    from . import flow

    app.register_blueprint(flow.bp)
