"""gunicorn on a free loopback port, for tests that need real workers and real HTTP framing."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import requests

from tests.conftest import ROOT

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(env: dict, workers: int = 2, threads: int = 8):
    """Yields the base URL of gunicorn serving wsgi:app with ``env``; stops it afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--threads", str(threads),
         "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "--timeout", "60", "wsgi:app"],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            if proc.poll() is not None:
                pytest.fail(f"gunicorn exited: {proc.stderr.read()[-2000:]}")
            try:
                if requests.get(base + "/login", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            pytest.fail("gunicorn did not answer")
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def http_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def csrf_of(session: requests.Session, url: str) -> str:
    return CSRF_RE.search(session.get(url, timeout=10).text).group(1)
