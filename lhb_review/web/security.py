"""Security headers on every response, and the rate limiter's 429 answer."""
from __future__ import annotations

import time

from flask import Flask, current_app, render_template, request
from flask_limiter import RateLimitExceeded

from lhb_review.extensions import limiter

# Pages: scripts and styles only from this site, no inline code, never framed by anyone.
# frame-src/object-src allow this site's own asset files (the inline PDF of a postPdf stage).
PAGE_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "frame-src": "'self'",
    "object-src": "'self'",
    "frame-ancestors": "'none'",
    "form-action": "'self'",
    "base-uri": "'self'",
}
# Asset files (images, PDFs) may be framed by our own pages and run nothing of their own.
ASSET_POLICY = {
    "default-src": "'none'",
    "img-src": "'self' data:",
    "style-src": "'unsafe-inline'",
    "object-src": "'self'",
    "frame-ancestors": "'self'",
    "form-action": "'none'",
    "base-uri": "'none'",
}
HSTS = "max-age=31536000; includeSubDomains"


def render_policy(policy: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in policy.items())


PAGE_CSP = render_policy(PAGE_POLICY)
ASSET_CSP = render_policy(ASSET_POLICY)


def is_asset_request() -> bool:
    return request.endpoint == "assets.file" or request.path.startswith("/assets/")


def set_security_headers(response):
    # An asset URL that fails answers with one of our own error pages, which needs the page policy's styles.
    asset = is_asset_request() and response.status_code < 400
    headers = response.headers
    headers.setdefault("Content-Security-Policy", ASSET_CSP if asset else PAGE_CSP)
    headers.setdefault("X-Frame-Options", "SAMEORIGIN" if asset else "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
    if current_app.config.get("HTTPS"):
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def sign_in_refused(retry_after: int):
    """The sign-in page's 429: too many attempts on this account; Retry-After says when to try again."""
    message = "Too many sign-in attempts. Wait a few minutes, then try again."
    response = current_app.make_response(
        (render_template("auth/login.html", email="", rate_limited=message), 429))
    response.headers["Retry-After"] = str(retry_after)
    return response


def too_many_requests(exc: RateLimitExceeded):
    """429 with a page that says what happened, and Retry-After: when the window that was hit resets."""
    from lhb_review.web.errors import json_error, wants_json

    if wants_json():
        response = json_error(429, "too_many_requests", "Too many requests; wait a little and try again.")
    elif request.endpoint == "auth.login":
        message = "Too many sign-in attempts. Wait a few minutes, then try again."
        response = render_template("auth/login.html", email="", rate_limited=message), 429
    else:
        message = "Too many requests; wait a little and try again."
        response = render_template("errors/error.html", status=429, message=message), 429
    response = current_app.make_response(response)
    hit = limiter.current_limit
    response.headers["Retry-After"] = str(max(1, int(hit.reset_at - time.time()))) if hit else "60"
    return response


def init_app(app: Flask) -> None:
    limiter.init_app(app)
    app.after_request(set_security_headers)
    app.register_error_handler(RateLimitExceeded, too_many_requests)
