"""The storage interface: the local backend for real, the S3 backend's keys and URLs without a network."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from lhb_review.config import ConfigError, build_config
from lhb_review.core.storage import InvalidKey, LocalStorage, S3Storage, StorageError, check_key, from_config

S3_ENV = {"STORAGE_BACKEND": "s3", "S3_ENDPOINT_URL": "https://acc123.r2.cloudflarestorage.com",
          "S3_BUCKET": "lhb-assets", "S3_ACCESS_KEY_ID": "AKIDEXAMPLE", "S3_SECRET_ACCESS_KEY": "secretexample"}


def test_local_storage_round_trip(tmp_path):
    store = LocalStorage(tmp_path)
    store.put("orders/A-1/preBria/front.png", b"first", "image/png")
    store.put("orders/A-1/preBria/front.png", b"second", "image/png")
    assert store.get("orders/A-1/preBria/front.png") == b"second"
    assert (tmp_path / "orders/A-1/preBria/front.png").read_bytes() == b"second"
    assert store.exists("orders/A-1/preBria/front.png")
    assert [p.name for p in (tmp_path / "orders/A-1/preBria").iterdir()] == ["front.png"]  # no temp files left
    assert store.url("orders/A-1/preBria/front.png") is None  # the app serves local files itself
    store.delete("orders/A-1/preBria/front.png")
    assert not store.exists("orders/A-1/preBria/front.png")
    with pytest.raises(StorageError):
        store.get("orders/A-1/preBria/front.png")


def test_local_storage_reports_a_store_it_cannot_write_to(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the store should be")
    with pytest.raises(StorageError) as caught:
        LocalStorage(blocker).put("orders/x.png", b"data", "image/png")
    assert "Cannot write orders/x.png" in str(caught.value)


@pytest.mark.parametrize("key", ["", "../secret", "orders/../../etc/passwd", "/etc/passwd", "a//b", "a/./b",
                                 "a\\b", "orders/%2e%2e/x", "orders/x y.png", "x" * 501, ".hidden/file", "a/"])
def test_keys_that_could_escape_the_store_are_refused(tmp_path, key):
    with pytest.raises(InvalidKey):
        check_key(key)
    with pytest.raises(InvalidKey):
        LocalStorage(tmp_path).put(key, b"x", "image/png")
    assert list(tmp_path.iterdir()) == []


def test_s3_object_keys_carry_the_prefix():
    store = S3Storage(endpoint_url="https://acc.r2.cloudflarestorage.com/", bucket="b", access_key_id="k",
                      secret_access_key="s", prefix="/review/")
    assert store.object_key("orders/A-1/postPdf/book.pdf") == "review/orders/A-1/postPdf/book.pdf"
    with pytest.raises(InvalidKey):
        store.object_key("../other-bucket/x")


def test_s3_public_url_when_a_public_domain_is_configured():
    store = S3Storage(endpoint_url="https://acc.r2.cloudflarestorage.com", bucket="b", access_key_id="k",
                      secret_access_key="s", public_url="https://assets.example.com/")
    assert store.url("orders/A-1/preBria/front.png") == "https://assets.example.com/orders/A-1/preBria/front.png"


def test_s3_presigned_url_is_path_style_and_signed_offline():
    pytest.importorskip("boto3", reason="boto3 is the s3 extra (pip install -e .[s3])")
    store = from_config(build_config({**S3_ENV, "S3_PREFIX": "lhb"}))
    assert isinstance(store, S3Storage)
    url = urlsplit(store.url("orders/A-1/preBria/front.png"))
    assert (url.scheme, url.netloc) == ("https", "acc123.r2.cloudflarestorage.com")
    assert url.path == "/lhb-assets/lhb/orders/A-1/preBria/front.png"
    query = parse_qs(url.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/") and "/auto/s3/" in query["X-Amz-Credential"][0]
    assert query["X-Amz-Expires"] == ["300"] and query["X-Amz-Signature"][0]


def test_local_is_the_default_backend(tmp_path):
    store = from_config(build_config({"ASSET_DIR": str(tmp_path)}))
    assert isinstance(store, LocalStorage) and store.root == tmp_path.resolve()


@pytest.mark.parametrize("missing", ["S3_ENDPOINT_URL", "S3_BUCKET", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY"])
def test_s3_backend_needs_all_its_settings(missing):
    env = {k: v for k, v in S3_ENV.items() if k != missing}
    with pytest.raises(ConfigError) as caught:
        build_config(env)
    assert missing in str(caught.value)


def test_an_unknown_backend_is_a_config_error():
    with pytest.raises(ConfigError):
        build_config({"STORAGE_BACKEND": "ftp"})
