"""Uploads are refused with a clear message when oversized, when a script or markup is named like an image,
and when an image would decompress into gigapixels; nothing is stored, replaced or audited then."""
from __future__ import annotations

import io
import struct
import zlib

import pytest

from lhb_review.extensions import db
from lhb_review.models import AuditLog, Order
from tests.factories import make_order_with_stages, make_user


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def decompression_bomb(width: int = 60_000, height: int = 60_000) -> bytes:
    """A few hundred bytes that claim 3.6 gigapixels: the header alone must be enough to refuse it."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 1024, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows) + png_chunk(b"IEND", b"")


def real_png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def stage_with_asset(app, login_as):
    order = make_order_with_stages("pending", "pending")
    browser = login_as(make_user())
    key = order.r2_assets["postBria"][0]["key"]
    return browser, order.order_id, key


def asset_files(app) -> set[str]:
    root = app.config["ASSET_DIR"]
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def upload(browser, order_id: str, key: str, data: bytes, filename: str, content_type: str = "image/png"):
    return browser.client.post(
        f"/orders/{order_id}/stages/postBria/replace",
        data={"csrf_token": browser.csrf, "asset_key": key, "file": (io.BytesIO(data), filename, content_type)},
        content_type="multipart/form-data",
    )


def page_after(browser, response) -> str:
    assert response.status_code in (303, 302), response.status_code
    return browser.get(response.headers["Location"]).get_data(as_text=True)


BAD_FILES = {
    "script named .png": (b"<script>alert(1)</script>", "evil.png", "image/png", "Its content was checked"),
    "html named .jpg": (b"<!doctype html><html><body onload=alert(1)>", "photo.jpg", "image/jpeg",
                        "Its content was checked"),
    "svg named .png": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "x.png", "image/png",
                       "Its content was checked"),
    "decompression bomb": (decompression_bomb(), "bomb.png", "image/png", "pixels"),
    "empty file": (b"", "empty.png", "image/png", "empty"),
}


@pytest.mark.parametrize("data,filename,content_type,message", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_bad_upload_is_refused_clearly_and_changes_nothing(app, stage_with_asset, data, filename, content_type,
                                                             message):
    browser, order_id, key = stage_with_asset
    files_before = asset_files(app)
    assets_before = db.session.get(Order, db.session.query(Order.id).filter_by(order_id=order_id).scalar()).r2_assets
    response = upload(browser, order_id, key, data, filename, content_type)
    html = page_after(browser, response)
    assert message.lower() in html.lower(), html[:2000]
    db.session.expire_all()
    assert db.session.query(Order).filter_by(order_id=order_id).one().r2_assets == assets_before
    assert db.session.query(AuditLog).filter_by(action="asset_replaced").count() == 0
    assert asset_files(app) == files_before


def test_an_upload_over_the_asset_limit_is_refused_clearly(app, stage_with_asset):
    browser, order_id, key = stage_with_asset
    limit = app.config["MAX_ASSET_BYTES"]
    data = real_png() + b"\x00" * (limit + 1)
    if len(data) > app.config["MAX_CONTENT_LENGTH"]:
        response = upload(browser, order_id, key, data, "big.png")
        assert response.status_code == 413
        return
    html = page_after(browser, upload(browser, order_id, key, data, "big.png"))
    assert "the limit is" in html
    assert db.session.query(AuditLog).filter_by(action="asset_replaced").count() == 0


def test_a_body_over_the_request_limit_is_refused_before_it_is_read(app, stage_with_asset):
    browser, order_id, key = stage_with_asset
    data = b"\x89PNG" + b"\x00" * app.config["MAX_CONTENT_LENGTH"]
    response = upload(browser, order_id, key, data, "huge.png")
    assert response.status_code == 413
    assert db.session.query(AuditLog).filter_by(action="asset_replaced").count() == 0


def test_a_real_image_is_accepted(app, stage_with_asset):
    """The control: the refusals above are about the files, not about the route."""
    browser, order_id, key = stage_with_asset
    response = upload(browser, order_id, key, real_png(), "page.png")
    html = page_after(browser, response)
    assert "Asset replaced" in html
    assert db.session.query(AuditLog).filter_by(action="asset_replaced").count() == 1
