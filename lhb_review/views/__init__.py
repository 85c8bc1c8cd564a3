"""Blueprints for people."""
from flask import Flask


def register(app: Flask) -> None:
    from . import assets, auth, orders, queue, ui

    ui.register(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(assets.bp)
