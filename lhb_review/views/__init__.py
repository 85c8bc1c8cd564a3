"""Blueprints for people."""
from flask import Flask


def register(app: Flask) -> None:
    from . import admin, assets, auth, health, orders, queue, stats, ui

    ui.register(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(orders.bp)
    app.register_blueprint(assets.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(stats.bp)
    from .. import api
    from . import deliveries

    api.init_app(app)
    app.register_blueprint(deliveries.bp)

    from . import flow

    app.register_blueprint(flow.bp)
