"""Input checked once at the edge: URL converters and a request guard that refuse control characters."""
from __future__ import annotations

import re
import tempfile

from flask import Flask, request
from werkzeug.routing import PathConverter, UnicodeConverter

from lhb_review.core.errors import Invalid

# NUL, CR, LF and the other C0/DEL controls: PostgreSQL cannot store NUL, and CR/LF in a value that ends
# up in a header (Location, a "try again" link) splits it. No path segment or query value needs them.
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_QUERY_VALUE = 4096


class PlainString(UnicodeConverter):
    """The default ``<name>`` converter, without control characters: a NUL in a path segment is a 404."""

    def __init__(self, map, minlength: int = 1, maxlength: int | None = None, length: int | None = None):
        super().__init__(map, minlength=minlength, maxlength=maxlength, length=length)
        self.regex = self.regex.replace("[^/]", r"[^/\x00-\x1f\x7f]")


class PlainPath(PathConverter):
    """``<path:name>`` without control characters."""

    regex = r"[^/\x00-\x1f\x7f](?:[^\x00-\x1f\x7f]*[^/\x00-\x1f\x7f])?"


def query_problem(args) -> tuple[str, str] | None:
    """(parameter, what is wrong) for the first unusable query parameter, or None: control characters or
    a value past any sane length."""
    for key, value in args.items(multi=True):
        name = CONTROL.sub("?", key)[:100]
        if CONTROL.search(key) or CONTROL.search(value):
            return name, "Query parameters cannot contain control characters (NUL, CR, LF)."
        if len(key) > 100 or len(value) > MAX_QUERY_VALUE:
            return name, f"A query parameter is longer than {MAX_QUERY_VALUE} characters."
    return None


def guard_request():
    """Refuse hostile query strings before any view reads them: 422 naming the parameter (the API's
    JSON error under /api/, the error page for people)."""
    problem = query_problem(request.args)
    if problem:
        name, message = problem
        raise Invalid(message, {name: message})


class BodyLimit:
    """WSGI middleware: a body sent without a Content-Length (``Transfer-Encoding: chunked``) is read, up to
    ``limit`` bytes, into a spooled buffer and handed on with the Content-Length it turned out to have.

    Werkzeug would otherwise cut such a body silently at MAX_CONTENT_LENGTH and parse what it got, so an
    oversized form was accepted. A body past the limit is not read further; it is passed on as empty
    with a Content-Length of ``limit + 1``, so Flask answers 413 exactly as for a declared length.
    """

    def __init__(self, wsgi_app, limit: int):
        self.wsgi_app = wsgi_app
        self.limit = limit

    def __call__(self, environ, start_response):
        chunked = environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        if chunked or (environ.get("wsgi.input_terminated") and not environ.get("CONTENT_LENGTH")):
            environ = self.buffered(environ)
        return self.wsgi_app(environ, start_response)

    def buffered(self, environ):
        source = environ["wsgi.input"]
        buffer = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
        size = 0
        while size <= self.limit:
            chunk = source.read(min(64 * 1024, self.limit + 1 - size))
            if not chunk:
                break
            buffer.write(chunk)
            size += len(chunk)
        if size > self.limit:
            buffer.close()
            buffer = tempfile.SpooledTemporaryFile(max_size=1)
        buffer.seek(0)
        environ = dict(environ)
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        environ["CONTENT_LENGTH"] = str(size)
        environ["wsgi.input"] = buffer
        return environ


def install_converters(app: Flask) -> None:
    """Must run before any blueprint adds its rules."""
    app.url_map.converters["default"] = PlainString
    app.url_map.converters["string"] = PlainString
    app.url_map.converters["path"] = PlainPath


def init_app(app: Flask) -> None:
    install_converters(app)
    app.before_request(guard_request)
    app.wsgi_app = BodyLimit(app.wsgi_app, app.config["MAX_CONTENT_LENGTH"])
