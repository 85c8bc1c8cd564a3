"""The one place that reads htmx's request headers."""
from __future__ import annotations

from flask import Flask, request


def wants_fragment() -> bool:
    """True for an htmx request that swaps part of a page (not boosted, not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def init_app(app: Flask) -> None:
    @app.after_request
    def vary_on_htmx(response):
        response.vary.add("HX-Request")
        return response
