"""Asset replacement: checked by content, stored, r2_assets updated, audited; approvals voided; refusals write nothing."""
from __future__ import annotations

import pytest

from lhb_review.extensions import db
from lhb_review.models import Order
from lhb_review import review
from lhb_review.review import fingerprints
from lhb_review.review.approvals import get_stage_status
from lhb_review.review.claims import ClaimedByOther
from lhb_review.core.errors import Invalid, NotFound
from lhb_review.review.machine import replace_asset
from lhb_review.review.uploads import StorageUnavailable, check_upload
from lhb_review.core.storage import LocalStorage
from tests import upload_files as files
from tests.factories import make_order_with_stages
from tests.flow_helpers import ANA, BEN, approval_row, audit_actions, audit_rows, stage_row

LIMITS = dict(max_bytes=2 * 1024 * 1024, max_pixels=40_000_000)


@pytest.mark.parametrize("fmt,content_type", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_images_are_recognised_by_content(fmt, content_type):
    checked = check_upload(files.image_bytes(fmt), **LIMITS)
    assert (checked.content_type, checked.kind, checked.width, checked.height) == (content_type, "image", 64, 48)


def test_a_pdf_is_recognised_and_its_pages_counted():
    checked = check_upload(files.pdf_bytes(3), **LIMITS)
    assert (checked.content_type, checked.kind, checked.pages) == ("application/pdf", "pdf", 3)


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"#!/bin/sh\necho pwned\n", "not a PNG, JPEG or WebP image, or a PDF"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "not a PNG"),
    (b"GIF89a" + b"\x00" * 64, "not a PNG"),
    (files.image_bytes("PNG")[:60], "damaged or incomplete"),
    (files.png_bomb(), "decompression bomb"),
    (files.pdf_bytes(1)[:-300], "damaged or incomplete"),
    (b"%PDF-1.4\n%%EOF\n", "damaged or incomplete"),
    (files.encrypted_pdf(), "encrypted"),
    (files.scripted_pdf(), "scripts"),
    (files.pageless_pdf(), "no pages"),
], ids=["empty", "script", "svg", "gif", "truncated-png", "bomb", "truncated-pdf", "hollow-pdf", "encrypted-pdf",
        "scripted-pdf", "pageless-pdf"])
def test_bad_files_are_refused_with_a_clear_message(data, message):
    with pytest.raises(Invalid) as caught:
        check_upload(data, **LIMITS)
    assert message in caught.value.message
    assert "file" in caught.value.fields


def test_too_large_and_too_many_pixels_are_refused():
    with pytest.raises(Invalid, match="the limit is 0.0 MB"):
        check_upload(files.image_bytes(), max_bytes=50, max_pixels=10**6)
    with pytest.raises(Invalid, match="decompression bomb"):
        check_upload(files.image_bytes(size=(200, 200)), max_bytes=10**6, max_pixels=30_000)


@pytest.fixture
def store(tmp_path):
    return LocalStorage(tmp_path / "assets")


def order_assets(order_id: str) -> dict:
    db.session.expire_all()
    return db.session.scalar(db.select(Order.r2_assets).where(Order.order_id == order_id))


def stored_files(store: LocalStorage) -> list[str]:
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file()) \
        if store.root.exists() else []


def test_replacing_an_image_stores_it_and_updates_r2_assets_and_the_audit(app, store):
    order = make_order_with_stages("pending")
    old_key = order.r2_assets["preBria"][0]["key"]
    data = files.image_bytes("JPEG")
    result = replace_asset(ANA, order.order_id, "preBria", old_key, data, filename="fixed.png", storage=store)
    checked = check_upload(data, **LIMITS)
    assert result.new_key.startswith(old_key.rsplit(".", 1)[0] + "-r") and result.new_key.endswith(".jpg")
    assert store.get(result.new_key) == data
    [entry] = order_assets(order.order_id)["preBria"]
    assert (entry["key"], entry["sha256"], entry["content_type"]) == (result.new_key, checked.sha256, "image/jpeg")
    assert entry["label"] == "Front" and entry["replaces"] == old_key
    [audit] = audit_rows(order.order_id)
    assert audit.action == "asset_replaced" and audit.reviewer_email == "ana@example.com"
    assert (audit.details["old_key"], audit.details["new_key"]) == (old_key, result.new_key)
    assert audit.details["new_sha256"] == checked.sha256 and audit.details["filename"] == "fixed.png"
    assert stage_row(order.order_id).status == "pending"


def test_replacing_an_asset_of_an_approved_stage_voids_the_approval(app, store):
    order = make_order_with_stages("pending")
    review.approve(ANA, order.order_id, "preBria")
    old_key = order.r2_assets["preBria"][0]["key"]
    result = replace_asset(BEN, order.order_id, "preBria", old_key, files.image_bytes(), storage=store)
    assert result.voided and (result.status_before, result.status_after) == ("approved", "pending")
    assert stage_row(order.order_id).status == "pending"
    assert approval_row(order.order_id).status == "pending"
    assert get_stage_status(order.order_id, "preBria") == "pending"
    assert sorted(audit_actions(order.order_id)) == ["approval_voided", "asset_replaced", "stage_approved"]
    [voided] = [a for a in audit_rows(order.order_id) if a.action == "approval_voided"]
    assert voided.details["changed"] == {"added": [result.new_key], "removed": [old_key], "changed": []}
    assert voided.details["new_fingerprint"] == fingerprints.fingerprint(order_assets(order.order_id)["preBria"])


def test_replacing_an_asset_of_a_rejected_stage_sends_it_back_for_review(app, store):
    order = make_order_with_stages("rejected")
    key = order.r2_assets["preBria"][0]["key"]
    replace_asset(ANA, order.order_id, "preBria", key, files.image_bytes(), storage=store)
    assert stage_row(order.order_id).status == "pending"
    assert audit_rows(order.order_id)[0].details["status_after"] == "pending"


def assert_nothing_changed(order, store):
    assert order_assets(order.order_id) == order.r2_assets
    assert stored_files(store) == []
    assert audit_rows(order.order_id) == []


@pytest.mark.parametrize("stage,key_index,data,error", [
    ("preBria", 0, b"<?php system($_GET['c']); ?>", Invalid),
    ("preBria", 0, files.png_bomb(), Invalid),
    ("preBria", 0, files.pdf_bytes(), Invalid),
    ("postPdf", 0, files.image_bytes(), Invalid),
    ("preBria", None, files.image_bytes(), NotFound),
], ids=["script-as-png", "bomb", "pdf-for-image", "image-for-pdf", "unknown-key"])
def test_refused_replacements_write_nothing(app, store, stage, key_index, data, error):
    order = make_order_with_stages("pending", "pending", "pending")
    key = order.r2_assets[stage][key_index]["key"] if key_index is not None else "orders/nope.png"
    with pytest.raises(error):
        replace_asset(ANA, order.order_id, stage, key, data, filename="innocent.png", storage=store)
    assert_nothing_changed(order, store)


def test_replacing_with_the_same_file_is_refused(app, store):
    order = make_order_with_stages("pending")
    data = files.image_bytes()
    key = order.r2_assets["preBria"][0]["key"]
    first = replace_asset(ANA, order.order_id, "preBria", key, data, storage=store)
    with pytest.raises(Invalid, match="already there"):
        replace_asset(ANA, order.order_id, "preBria", first.new_key, data, storage=store)
    assert audit_actions(order.order_id) == ["asset_replaced"]


def test_a_stage_claimed_by_someone_else_cannot_have_its_assets_replaced(app, store):
    order = make_order_with_stages("pending")
    review.claim(BEN, order.order_id, "preBria")
    with pytest.raises(ClaimedByOther):
        replace_asset(ANA, order.order_id, "preBria", order.r2_assets["preBria"][0]["key"], files.image_bytes(),
                      storage=store)
    assert order_assets(order.order_id) == order.r2_assets and stored_files(store) == []
    assert audit_actions(order.order_id) == ["stage_claimed"]


def test_a_store_that_fails_changes_nothing(app, tmp_path):
    blocker = tmp_path / "blocked"
    blocker.write_text("not a directory")
    order = make_order_with_stages("pending")
    with pytest.raises(StorageUnavailable):
        replace_asset(ANA, order.order_id, "preBria", order.r2_assets["preBria"][0]["key"], files.image_bytes(),
                      storage=LocalStorage(blocker))
    assert order_assets(order.order_id) == order.r2_assets and audit_rows(order.order_id) == []
