"""The pipeline's JSON API at /api/v1: bearer tokens, one error shape, OpenAPI; never HTML or a login."""

from __future__ import annotations

from flask import Flask, request

from lhb_review.api import common, views  # noqa: F401 - routes and handlers attach themselves to bp
from lhb_review.api.common import bp
from lhb_review.extensions import csrf



def init_app(app: Flask) -> None:
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
