"""The one place that reads htmx's request headers, and the one way a view answers htmx or a plain form."""
from __future__ import annotations

from typing import Callable

from flask import Flask, flash, redirect, request


def wants_fragment() -> bool:
    """True for an htmx request that swaps part of a page (not boosted, not a history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def fragment_or_redirect(fragment: Callable[[], str], back: str, *, message: str | None = None,
                         category: str = "success", status: int = 200, headers: dict | None = None):
    """htmx gets ``fragment()`` with ``status`` and ``headers``; a plain form gets ``message`` flashed and a
    303 to ``back``, so the same action works with and without JavaScript."""
    if wants_fragment():
        return fragment(), status, headers or {}
    if message:
        flash(message, category)
    return redirect(back, 303)


def go_to(target: str):
    """Send the browser to ``target``: HX-Redirect for htmx (a whole-page load), else a 303."""
    if wants_fragment():
        return "", 200, {"HX-Redirect": target}
    return redirect(target, 303)


def init_app(app: Flask) -> None:
    @app.after_request
    def vary_on_htmx(response):
        response.vary.add("HX-Request")
        return response
