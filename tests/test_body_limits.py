"""Body limits hold for every framing: a body past MAX_UPLOAD_BYTES gets 413 and changes nothing, whether it
declares a Content-Length or arrives with Transfer-Encoding: chunked (against gunicorn, real HTTP)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from lhb_review.extensions import db
from lhb_review.models import Order, ReviewStage
from tests.conftest import test_env
from tests.factories import PASSWORD, make_order_with_stages, make_user
from tests.gunicorn_helpers import csrf_of, gunicorn, http_session
from tests.pipeline_helpers import make_token, order_body
from tests.upload_files import image_bytes

LIMIT = 256 * 1024


@pytest.fixture
def server(app, database_url, tmp_path):
    env = test_env(database_url, tmp_path, MAX_UPLOAD_BYTES=LIMIT, API_MAX_BODY_BYTES=LIMIT)
    with gunicorn(env, workers=1, threads=4) as base:
        yield base


@pytest.fixture
def reviewer(server):
    email = make_user("chunky@example.com").email
    session = http_session()
    token = csrf_of(session, server + "/login")
    signed_in = session.post(server + "/login", data={"csrf_token": token, "email": email, "password": PASSWORD},
                             allow_redirects=False, timeout=30)
    assert signed_in.status_code == 302
    return session, csrf_of(session, server + "/queue")


def chunks(data: bytes, size: int = 32 * 1024):
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def stage_status(order_id: str) -> str:
    db.session.expire_all()
    return db.session.scalar(select(ReviewStage.status).where(ReviewStage.order_id == order_id,
                                                              ReviewStage.stage_name == "preBria"))


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("times", [1.01, 3])
def test_an_oversized_decision_form_is_413_and_decides_nothing(server, reviewer, chunked, times):
    session, token = reviewer
    order_id = make_order_with_stages("pending").order_id
    body = f"csrf_token={token}&notes=".encode() + b"x" * int(LIMIT * times)
    url = f"{server}/orders/{order_id}/stages/preBria/approve"
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-CSRFToken": token}
    response = session.post(url, data=chunks(body) if chunked else body, headers=headers,
                            allow_redirects=False, timeout=60)
    assert response.status_code == 413
    assert stage_status(order_id) == "pending"


def test_a_chunked_form_within_the_limit_still_decides(server, reviewer):
    session, token = reviewer
    order_id = make_order_with_stages("pending").order_id
    body = f"csrf_token={token}&notes=chunked+but+small".encode()
    response = session.post(f"{server}/orders/{order_id}/stages/preBria/approve", data=chunks(body, 8),
                            headers={"Content-Type": "application/x-www-form-urlencoded"},
                            allow_redirects=False, timeout=60)
    assert response.status_code == 303
    assert stage_status(order_id) == "approved"


def test_an_oversized_chunked_multipart_upload_is_413(server, reviewer):
    session, token = reviewer
    order_id = make_order_with_stages("pending").order_id
    boundary = "lhbboundary"
    padding = image_bytes() + b"\0" * (LIMIT * 2)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + padding + f"\r\n--{boundary}--\r\n".encode()
    response = session.post(f"{server}/orders/{order_id}/stages/preBria/replace", data=chunks(body),
                            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                            allow_redirects=False, timeout=60)
    assert response.status_code == 413


def test_an_oversized_chunked_api_body_is_413_and_stores_nothing(server):
    token = make_token()
    import json

    body = json.dumps(order_body(notes="x" * (LIMIT * 2))).encode()
    response = http_session().put(f"{server}/api/v1/orders/ORD-CHUNK", data=chunks(body), timeout=60,
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 413 and response.headers["Content-Type"].startswith("application/json")
    db.session.expire_all()
    assert db.session.scalar(select(Order).where(Order.order_id == "ORD-CHUNK")) is None
