"""Blueprints for people."""
from flask import Flask


def register(app: Flask) -> None:
    from lhb_review.views import admin, assets, auth, batch, deliveries, health, orders, queue, stage, stats, ui

    ui.register(app)
    for module in (auth, queue, batch, orders, stage, assets, health, admin, stats, deliveries):
        app.register_blueprint(module.bp)
