"""Files and links: backups are private to their owner, and "try again" links never leave the site."""
from __future__ import annotations

import os
import stat

import pytest
from flask import request

from lhb_review.ops import backups
from lhb_review.web.resilience import LOCKED, UNAVAILABLE, respond, same_site_path
from lhb_review.web.targets import local_target
from tests.test_backups import app_url

HOSTILE_TARGETS = ["/\\evil.com", "//evil.com", "\\\\evil.com", "https://evil.com/queue", "/\t/evil.com",
                   "/x\r\nSet-Cookie: a=1", "javascript:alert(1)", "http://localhost.evil.com/queue"]
IN_HEADERS = [t for t in HOSTILE_TARGETS if "\n" not in t]  # a header cannot carry a line break


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "existing 0755 folder"])
def test_backups_and_manifests_are_0600_in_a_0700_folder(app, tmp_path, open_umask, existing):
    folder = tmp_path / "backups"
    if existing:
        folder.mkdir(mode=0o755)
    manifest, _ = backups.create_backup(app_url(), folder)
    assert mode(folder) == 0o700
    written = sorted(folder.iterdir())
    assert len(written) == 2  # the archive and its manifest; no temporary file left behind
    assert {p.name for p in written} == {os.path.basename(manifest.file), backups.manifest_path(
        backups.Path(manifest.file)).name}
    for path in written:
        assert mode(path) == 0o600, path.name


@pytest.mark.parametrize("target", HOSTILE_TARGETS)
def test_no_hostile_target_is_local(target):
    assert local_target(target, host="localhost") is None


def test_site_paths_and_this_sites_urls_are_kept():
    assert local_target("/orders/A-1/stages/preBria?x=1") == "/orders/A-1/stages/preBria?x=1"
    assert local_target("http://localhost/orders/A-1", host="localhost") == "/orders/A-1"


@pytest.mark.parametrize("target", IN_HEADERS)
def test_the_fault_pages_try_again_link_ignores_a_hostile_referer(app, target):
    with app.test_request_context("/orders/A-1/stages/preBria/approve", method="POST",
                                  headers={"Referer": target}):
        html = respond(LOCKED).get_data(as_text=True)
        assert same_site_path(request.referrer) == "/queue"
    assert "evil" not in html and 'href="/queue"' in html


@pytest.mark.parametrize("target", IN_HEADERS)
def test_the_htmx_fault_cards_try_again_link_ignores_a_hostile_current_url(app, target):
    with app.test_request_context("/orders/A-1/stages/preBria/approve", method="POST",
                                  headers={"HX-Request": "true", "HX-Current-URL": target}):
        html = respond(UNAVAILABLE).get_data(as_text=True)
    assert "evil" not in html and 'href="/queue"' in html


def test_a_resolve_forms_next_with_a_line_break_goes_to_the_error_list(app, make_client):
    from lhb_review.extensions import db
    from lhb_review.models import ErrorLog
    from tests.factories import make_user

    make_user("fixer@example.com", role="admin")
    db.session.add(ErrorLog(error_id="E-NEXT-1", error_type="RuntimeError", severity="error", message="x"))
    db.session.commit()
    browser = make_client()
    browser.login("fixer@example.com", __import__("tests.factories", fromlist=["PASSWORD"]).PASSWORD)
    browser.refresh_csrf("/admin/errors")
    response = browser.client.post("/admin/errors/E-NEXT-1/resolve",
                                   data={"csrf_token": browser.csrf, "next": "/admin/errors\r\nX-Evil: 1"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/errors")
