"""Blueprints for people."""
from flask import Flask


def register(app: Flask) -> None:
    from . import admin, assets, auth, health, queue, stats

    app.register_blueprint(auth.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(assets.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(stats.bp)
