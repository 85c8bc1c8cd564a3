"""The S3 backend over real HTTP, against an S3 emulator (moto's server mode) run as a separate process.

moto is an emulator, not S3 or R2: it speaks the S3 protocol and checks SigV4 signatures and IAM
policies (after the first few unauthenticated calls that create the user, its key and the bucket), which
is what these tests need. Behaviour particular to R2 or AWS (consistency, limits) is not covered.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import boto3
import pytest
import requests

from lhb_review.core.storage import S3Storage, StorageError
from tests.factories import make_order_with_stages, make_user
from tests.upload_files import pdf_bytes

BUCKET = "lhb-assets"
SETUP_CALLS = 4  # create user, its policy, its access key, the bucket: then every call must be signed


@dataclass
class Emulator:
    url: str
    access_key_id: str
    secret_access_key: str

    def storage(self, **overrides) -> S3Storage:
        values = dict(endpoint_url=self.url, bucket=BUCKET, access_key_id=self.access_key_id,
                      secret_access_key=self.secret_access_key, region="us-east-1", prefix="lhb")
        values.update(overrides)
        return S3Storage(**values)

    def env(self) -> dict:
        return {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": self.url, "S3_BUCKET": BUCKET,
                "S3_ACCESS_KEY_ID": self.access_key_id, "S3_SECRET_ACCESS_KEY": self.secret_access_key,
                "S3_REGION": "us-east-1", "S3_PREFIX": "lhb"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def emulator():
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(SETUP_CALLS)}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                requests.get(url + "/moto-api/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None:
                    pytest.fail("the S3 emulator (moto server) exited at start")
                time.sleep(0.05)
        else:
            pytest.fail("the S3 emulator (moto server) did not start listening")
        setup = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="setup",
                     aws_secret_access_key="setup")
        iam = boto3.client("iam", **setup)
        iam.create_user(UserName="lhb-review")
        iam.put_user_policy(UserName="lhb-review", PolicyName="assets", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="lhb-review")["AccessKey"]
        boto3.client("s3", **{**setup, "aws_access_key_id": key["AccessKeyId"],
                              "aws_secret_access_key": key["SecretAccessKey"]}).create_bucket(Bucket=BUCKET)
        yield Emulator(url, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_put_get_and_exists_round_trip_over_http(emulator):
    store = emulator.storage()
    key = "orders/S3-1/preBria/front.png"
    assert not store.exists(key)
    store.put(key, b"\x89PNG first", "image/png")
    store.put(key, b"\x89PNG second", "image/png")
    assert store.exists(key) and store.get(key) == b"\x89PNG second"
    # Under the prefix, as any other client of the bucket sees it.
    raw = boto3.client("s3", endpoint_url=emulator.url, region_name="us-east-1",
                       aws_access_key_id=emulator.access_key_id, aws_secret_access_key=emulator.secret_access_key)
    head = raw.head_object(Bucket=BUCKET, Key="lhb/" + key)
    assert head["ContentType"] == "image/png"
    store.delete(key)
    assert not store.exists(key)


def test_a_missing_key_is_a_storage_error_not_a_crash(emulator):
    store = emulator.storage()
    with pytest.raises(StorageError) as caught:
        store.get("orders/S3-1/preBria/never-written.png")
    assert caught.value.status == 404 and "never-written.png" in str(caught.value)
    assert store.exists("orders/S3-1/preBria/never-written.png") is False


@pytest.mark.parametrize("wrong", [{"secret_access_key": "not-the-secret"}, {"access_key_id": "AKIANOSUCHKEY000"}])
def test_a_wrong_credential_is_a_clear_error(emulator, wrong):
    store = emulator.storage(**wrong)
    for attempt in (lambda: store.put("orders/x/a.png", b"x", "image/png"), store.check,
                    lambda: store.get("orders/x/a.png")):
        with pytest.raises(StorageError) as caught:
            attempt()
        assert caught.value.status == 403
        assert "refused the credentials" in str(caught.value) and "S3_SECRET_ACCESS_KEY" in str(caught.value)
    assert not emulator.storage().exists("orders/x/a.png")


def test_an_unreachable_store_is_a_clear_error():
    store = S3Storage(endpoint_url=f"http://127.0.0.1:{free_port()}", bucket=BUCKET, access_key_id="k",
                      secret_access_key="s", region="us-east-1")
    with pytest.raises(StorageError) as caught:
        store.check()
    assert "unreachable" in str(caught.value)


@pytest.fixture
def s3_app(app, emulator):
    """The suite's app with its asset store switched to the emulator's bucket for one test."""
    saved = {k: app.config.get(k) for k in emulator.env()}
    app.config.update(emulator.env())
    app.extensions["lhb_storage"] = emulator.storage()
    yield app
    app.config.update(saved)
    app.extensions.pop("lhb_storage", None)


def test_the_pdf_page_route_renders_a_page_read_from_the_bucket(s3_app, emulator, login_as):
    import hashlib

    data = pdf_bytes(2)
    key = "orders/S3-PDF-1/postPdf/book.pdf"
    emulator.storage().put(key, data, "application/pdf")
    assets = {"postPdf": [{"key": key, "label": "book.pdf", "content_type": "application/pdf",
                           "sha256": hashlib.sha256(data).hexdigest()}]}
    order = make_order_with_stages("approved", "approved", "pending", order_id="S3-PDF-1", r2_assets=assets)
    browser = login_as(make_user("s3-reviewer@example.com"))
    picture = browser.get(f"/orders/{order.order_id}/stages/postPdf/pages/2.png")
    assert picture.status_code == 302
    served = browser.get(picture.headers["Location"])
    assert served.status_code == 302  # the asset route hands the browser a presigned URL of the bucket
    presigned = served.headers["Location"]
    assert presigned.startswith(f"{emulator.url}/{BUCKET}/lhb/derived/pdf-pages/")
    assert "X-Amz-Signature=" in presigned
    # moto answers presigned requests with a 500 while IAM checks are on (an emulator limit), so the
    # picture is read back through the API instead: extracted from the bucket's PDF, kept in the bucket.
    derived = presigned.split(f"/{BUCKET}/lhb/", 1)[1].split("?", 1)[0]
    assert emulator.storage().get(derived).startswith(b"\x89PNG")


def test_readyz_reports_the_bucket(s3_app, emulator, client):
    body = client.get("/readyz").get_json()
    assert body["storage"] == "ok" and body["status"] == "ready"
    s3_app.extensions["lhb_storage"] = emulator.storage(secret_access_key="not-the-secret")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["storage"] == "forbidden"
    s3_app.extensions["lhb_storage"] = emulator.storage(bucket="no-such-bucket")
    assert client.get("/readyz").get_json()["storage"] == "unreachable"


def test_flask_health_checks_the_bucket(s3_app, emulator):
    result = s3_app.test_cli_runner().invoke(args=["health"])
    assert result.exit_code == 0 and "Storage OK." in result.output and BUCKET in result.output
    s3_app.extensions["lhb_storage"] = emulator.storage(access_key_id="AKIANOSUCHKEY000")
    result = s3_app.test_cli_runner().invoke(args=["health"])
    assert result.exit_code == 8 and "refused the credentials" in result.output
