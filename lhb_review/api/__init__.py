"""The pipeline's JSON API at /api/v1: bearer tokens, one error shape, OpenAPI; never HTML or a login."""

from __future__ import annotations

from flask import Blueprint, Flask, request

from ..extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from . import common, views  # noqa: F401 - routes and handlers attach themselves to bp

    app.config.setdefault("API_MAX_BODY_BYTES", 1024 * 1024)
    csrf.exempt(bp)
    app.register_blueprint(bp)

    @app.after_request
    def allow_header_on_api_405(response):
        # The app-wide JSON error handler answers 405s outside any blueprint; it cannot see the
        # allowed methods, so they are added here (RFC 9110 requires Allow on a 405).
        if (
            response.status_code == 405
            and request.path.startswith("/api/")
            and "Allow" not in response.headers
        ):
            adapter = app.url_map.bind_to_environ(request.environ)
            methods = sorted(adapter.allowed_methods())
            if methods:
                response.headers["Allow"] = ", ".join(methods)
        return response
