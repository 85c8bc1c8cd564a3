"""What every API request shares: token authentication, body limits, JSON parsing and the error shape."""

from __future__ import annotations

import json

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from lhb_review.web.auth import client_ip
from lhb_review.pipeline import tokens
from lhb_review.core.actors import Actor
from lhb_review.core.errors import DomainError
from lhb_review.core.stages import UnknownStage

PUBLIC_ENDPOINTS = {"api.openapi"}

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class ApiError(Exception):
    """An HTTP-level refusal with a stable code (bad JSON, wrong media type, missing token)."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, *, fields=None, details=None, headers=None):
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = {str(k): str(v) for k, v in fields.items()}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.before_request
def authenticate():
    # Flask 3.1 reads this per request: a larger body is refused with 413 before it is read.
    request.max_content_length = current_app.config["API_MAX_BODY_BYTES"]
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="lhb-review"'}
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "unauthorized", "Send an API token: Authorization: Bearer <token>.", challenge)
    token = tokens.authenticate(value.strip())
    if token is None:
        raise ApiError(401, "invalid_token", "This API token is unknown or was revoked.", challenge)
    g.api_token_name = token.name


def api_actor() -> Actor:
    return Actor(
        email=g.api_token_name, kind="token", ip=client_ip(), user_agent=request.headers.get("User-Agent")
    )


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def json_body(*, optional: bool = False):
    """The request's JSON value; 415 for another media type, 400 when it does not parse, 413 when too big."""
    data = request.get_data(cache=True)
    if len(data) >= request.max_content_length:
        # A chunked body is cut at the limit rather than refused, so reaching it means it was larger.
        raise RequestEntityTooLarge()
    if optional and not data.strip():
        return None
    if request.mimetype != "application/json":
        raise ApiError(
            415, "unsupported_media_type", "Send the body as JSON with Content-Type: application/json."
        )
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "malformed_json", f"The body is not valid JSON: {str(exc)[:200]}") from None
    if not text_ok(value):
        raise ApiError(
            400,
            "malformed_json",
            "The body holds text that is not valid Unicode (a lone surrogate) or is nested too deeply.",
        )
    return value


def text_ok(value, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(text_ok(k, depth + 1) and text_ok(v, depth + 1) for k, v in value.items())
    if isinstance(value, list):
        return all(text_ok(v, depth + 1) for v in value)
    return True


@bp.errorhandler(ApiError)
def api_error(exc: ApiError):
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers)


@bp.errorhandler(DomainError)
def domain_error(exc: DomainError):
    details = {k: v for k, v in exc.context.items() if isinstance(v, (str, int, list, type(None)))}
    return error_response(
        exc.status, exc.code, exc.message, fields=getattr(exc, "fields", None), details=details or None
    )


@bp.errorhandler(UnknownStage)
def unknown_stage(exc: UnknownStage):
    return error_response(404, "unknown_stage", str(exc))


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    headers = {}
    if exc.code == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(sorted(exc.valid_methods))
    return error_response(exc.code or 500, code, exc.description or exc.name, headers=headers)
