"""Helpers of the pipeline tests: an API client over real HTTP, request bodies, and a webhook receiver."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

from lhb_review.pipeline import tokens
from lhb_review.core.actors import Actor

ADMIN_CLI = Actor(email="cli@localhost", kind="system")


def make_token(name: str = "pipeline-prod") -> str:
    _, token = tokens.create(ADMIN_CLI, name)
    return token


class Api:
    """requests against the live server, with the bearer token and the /api/v1 prefix."""

    def __init__(self, base_url: str, token: str | None):
        self.base = base_url + "/api/v1"
        self.session = requests.Session()
        self.session.trust_env = False
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["User-Agent"] = "pipeline-tests/1"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=30, **kwargs)

    def get(self, path: str, **kwargs):
        return self.request("GET", path, **kwargs)

    def put(self, path: str, body=None, **kwargs):
        return self.request("PUT", path, json=body, **kwargs)

    def post(self, path: str, body=None, **kwargs):
        return self.request("POST", path, json=body, **kwargs)


def order_body(**overrides) -> dict:
    body = {
        "platform": "shopify",
        "project": "my-first-adventure",
        "customer_first_name": "Ada",
        "customer_last_name": "Lovelace",
        "customer_email": "ada@example.com",
        "order_date": "2026-11-20T09:30:00Z",
        "status": "in_review",
        "character_specs": {"name": "Maya", "age": 5},
        "book_specs": {"title": "Maya and the Moon", "pages": 24},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def asset(name: str, content: str = "v1", content_type: str = "image/png") -> dict:
    return {
        "key": f"orders/x/{name}",
        "label": name.title(),
        "content_type": content_type,
        "sha256": hashlib.sha256(f"{name}:{content}".encode()).hexdigest(),
    }


class Receiver:
    """A real HTTP server on 127.0.0.1 that records the webhook requests it gets.

    ``status`` is the answer; ``hold`` (an Event), when set, makes each request wait for it before
    answering, so a test can act while the sender waits.
    """

    def __init__(self, port: int = 0, status: int = 200):
        self.requests: list[dict] = []
        self.status = status
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append({"headers": dict(self.headers), "body": body, "path": self.path})
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"ok": true}')
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def keys(self) -> list[str]:
        return [r["headers"]["Idempotency-Key"] for r in self.requests]

    def bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def stop(self):
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
