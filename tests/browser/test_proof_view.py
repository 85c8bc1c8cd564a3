"""The print-proof view in headless Chromium: the cover, then spreads of pages rendered by PDFium, overlays of
trim, bleed and safe zone switched on and off without script, keyboard paging, and a failing check's link
opening its page."""
from __future__ import annotations

import hashlib
import io

from pypdf import PdfReader, PdfWriter
from pypdf.generic import RectangleObject

from lhb_review.core.storage import get_storage
from lhb_review.extensions import db
from lhb_review.ops.demo_assets import make_order_assets
from lhb_review.review.checks import enqueue_checks, jobs
from tests.factories import make_order_with_stages, make_user

SPECS = {"name": "Noor"}
BOOK = {"title": "Noor and the Lost Comet", "theme": "lost comet", "pages": 12, "trim_size": "6 x 6 in",
        "dedication": "For Noor, with love from Sam."}
WRONG_PAGE = 5


def proof_order(app):
    """A print-ready book whose page 5 alone has the wrong TrimBox, with its checks worked."""
    order = make_order_with_stages("approved", "approved", "pending", order_id="LHB-PROOF-1",
                                   character_specs=SPECS, book_specs=BOOK)
    (pdf,) = make_order_assets(app.config["ASSET_DIR"], order.order_id, "space-explorer", SPECS, BOOK,
                               stages=("postPdf",))["postPdf"]
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(get_storage().get(pdf["key"]))))
    writer.pages[WRONG_PAGE - 1].trimbox = RectangleObject([9, 9, 400, 400])
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    get_storage().put(pdf["key"], data, "application/pdf")

    order.r2_assets = {**(order.r2_assets or {}), "postPdf": [{**pdf, "sha256": hashlib.sha256(data).hexdigest()}]}
    db.session.flush()
    enqueue_checks(order.order_id, "postPdf", reason="test")
    db.session.commit()
    base = jobs.WorkerSettings.from_config(app.config)
    jobs.run_worker(jobs.WorkerSettings(base.checks, base.limits, poll=0.1), once=True)
    return order


def box(locator) -> dict:
    return locator.bounding_box()


def loaded(page, selector: str) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    page.wait_for_function(f"() => {{ const i = document.querySelector({selector!r}); return i && i.complete && i.naturalWidth > 0; }}")


def test_the_proof_shows_spreads_with_overlays_keyboard_paging_and_opens_a_failing_checks_page(
        app, page, browser_login, screenshot):
    order = proof_order(app)
    browser_login(page, make_user())
    page.goto(f"/orders/{order.order_id}/stages/postPdf")
    failing = page.locator("#checks-panel [data-check='pdf.trim_size'] a.check-link")
    assert failing.get_attribute("href").endswith(f"/stages/postPdf/proof#page-{WRONG_PAGE}")
    with page.context.expect_page() as opened:
        failing.click()
    proof = opened.value
    proof.wait_for_load_state()
    assert proof.url.endswith(f"#page-{WRONG_PAGE}")

    # The book as it is read: the cover alone, then two pages side by side, and the last page alone.
    spreads = proof.locator("[data-spread]")
    assert spreads.count() == 7
    assert [spreads.nth(k).locator("[data-page]").count() for k in range(7)] == [1, 2, 2, 2, 2, 2, 1]
    assert spreads.nth(2).locator("[data-page]").evaluate_all("ps => ps.map(p => p.dataset.page)") == ["4", "5"]

    # The failing check's page is the one shown, and marked.
    current = proof.locator("[data-spread].is-current")
    assert current.get_attribute("id") == "spread-3"
    assert proof.locator(f"#page-{WRONG_PAGE}").get_attribute("class").split().count("is-target") == 1
    loaded(proof, f"#page-{WRONG_PAGE} img")
    left, right = (box(proof.locator(f"#page-{n} .proof-sheet")) for n in (4, 5))
    assert abs(left["y"] - right["y"]) < 1 and left["x"] + left["width"] <= right["x"] + 1  # side by side
    screenshot(proof, "proof-failing-page")

    # Overlays sit where the PDF's boxes say: 9 pt of bleed around a 432 pt trim on a 450 pt page, and the
    # safe zone 0.25 in (18 pt) inside the trim.
    sheet = box(proof.locator("#page-4 .proof-sheet"))
    scale = sheet["width"] / 450
    trim = box(proof.locator("#page-4 .overlay-trim"))
    safe = box(proof.locator("#page-4 .overlay-safe"))
    assert abs((trim["x"] - sheet["x"]) - 9 * scale) < 2 and abs(trim["width"] - 432 * scale) < 3
    assert abs((safe["x"] - sheet["x"]) - 27 * scale) < 2 and abs(safe["width"] - 396 * scale) < 3
    # Page 5's own wrong TrimBox is drawn from its own boxes, not page 4's.
    wrong = box(proof.locator(f"#page-{WRONG_PAGE} .overlay-trim"))
    assert abs(wrong["width"] - 391 * scale) < 3

    for name in ("trim", "bleed", "safe"):
        overlay = proof.locator(f"#page-4 .overlay-{name}")
        assert overlay.is_visible()
        proof.locator(f"#show-{name}").uncheck()
        assert not overlay.is_visible()
    screenshot(proof, "proof-overlays-off")
    for name in ("trim", "bleed", "safe"):
        proof.locator(f"#show-{name}").check()
        assert proof.locator(f"#page-4 .overlay-{name}").is_visible()

    # Keyboard paging: → and ← turn one spread, Home and End go to the cover and the last page.
    proof.locator("main").focus()
    proof.keyboard.press("ArrowRight")
    assert current.get_attribute("id") == "spread-4" and proof.url.endswith("#page-6")
    proof.keyboard.press("ArrowLeft")
    proof.keyboard.press("ArrowLeft")
    assert current.get_attribute("id") == "spread-2" and proof.url.endswith("#page-2")
    proof.keyboard.press("End")
    assert current.get_attribute("id") == "spread-7"
    proof.keyboard.press("Home")
    assert current.get_attribute("id") == "spread-1"
    loaded(proof, "#page-1 img")
    screenshot(proof, "proof-cover")


def test_the_overlay_switches_work_without_javascript(app, chromium, live_server, browser_login):
    order = proof_order(app)
    context = chromium.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        browser_login(page, make_user())
        page.goto(f"/orders/{order.order_id}/stages/postPdf/proof")
        bleed, trim = page.locator("#page-2 .overlay-bleed"), page.locator("#page-2 .overlay-trim")
        assert bleed.is_visible() and trim.is_visible()
        page.locator("#show-bleed").uncheck()
        assert not bleed.is_visible() and trim.is_visible()
    finally:
        context.close()
