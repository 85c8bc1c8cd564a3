"""The image inspector in Chromium: fit to screen, 1:1, zoom with keys and the wheel, drag and arrow keys to pan,
next and previous across the stage's images."""
from __future__ import annotations

import pytest

from tests.browser.scene import build_scene
from tests.browser.test_csp import wait_until


def image_box(page) -> dict:
    return page.evaluate("(() => { const r = document.getElementById('lightbox-img').getBoundingClientRect();"
                         " return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")


def settled_box(page) -> dict:
    """The image's box once wheel events still in flight have landed (two equal reads in a row)."""
    last = image_box(page)
    while True:
        page.wait_for_timeout(100)
        now = image_box(page)
        if now == last:
            return now
        last = now


@pytest.fixture
def inspector(app, chromium, live_server, browser_login):
    scene = build_scene(app)
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    browser_login(page, scene["admin"])
    page.goto(scene["pages"]["stage-postbria"])
    page.click(".gallery a[data-gallery-item] >> nth=0")
    page.locator("#lightbox").wait_for(state="visible")
    wait_until(page, "document.getElementById('lightbox-img').naturalWidth > 0 && "
                     "document.getElementById('lightbox-zoom').textContent.includes('fit')")
    yield page
    context.close()


def test_the_image_opens_fitted_to_the_screen_and_1_shows_it_pixel_for_pixel(inspector, screenshot):
    page = inspector
    natural = page.evaluate("document.getElementById('lightbox-img').naturalWidth")
    stage = page.locator("[data-lightbox-stage]").bounding_box()
    fitted = image_box(page)
    # The demo spread (over 5000 px wide) is fitted to the screen, not shown at its own size.
    assert abs(fitted["width"] - natural) > 50
    assert fitted["width"] <= stage["width"] + 1 and fitted["height"] <= stage["height"] + 1
    assert abs(fitted["height"] - stage["height"]) < 2 or abs(fitted["width"] - stage["width"]) < 2
    screenshot(page, "inspector-fit")
    page.keyboard.press("1")
    assert abs(image_box(page)["width"] - natural) < 1
    page.keyboard.press("+")
    assert abs(image_box(page)["width"] - natural * 1.25) < 1
    page.keyboard.press("-")
    assert abs(image_box(page)["width"] - natural) < 1
    page.keyboard.press("0")
    assert abs(image_box(page)["width"] - fitted["width"]) < 1


def test_wheel_zooms_and_drag_and_arrows_pan_a_zoomed_image(inspector, screenshot):
    page = inspector
    fitted = image_box(page)
    stage = page.locator("[data-lightbox-stage]").bounding_box()
    middle = (stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    page.mouse.move(*middle)
    for _ in range(4):
        page.mouse.wheel(0, -200)
    wait_until(page, f"document.getElementById('lightbox-img').getBoundingClientRect().width > {fitted['width'] * 1.5}")
    zoomed = settled_box(page)
    screenshot(page, "inspector-zoomed")
    page.mouse.down()
    page.mouse.move(middle[0] + 120, middle[1] + 90, steps=5)
    page.mouse.up()
    dragged = image_box(page)
    assert dragged["x"] == pytest.approx(zoomed["x"] + 120, abs=2)
    assert dragged["y"] == pytest.approx(zoomed["y"] + 90, abs=2)
    caption = page.locator("#lightbox-caption").inner_text()
    page.keyboard.press("ArrowLeft")
    assert image_box(page)["x"] == pytest.approx(dragged["x"] + 80, abs=2)
    assert page.locator("#lightbox-caption").inner_text() == caption  # panning, not moving on


def test_arrows_at_fit_and_the_buttons_go_through_the_stages_images(inspector):
    page = inspector
    captions = [page.locator("#lightbox-caption").inner_text()]
    page.keyboard.press("ArrowRight")
    captions.append(page.locator("#lightbox-caption").inner_text())
    page.get_by_role("button", name="Next image").click()
    captions.append(page.locator("#lightbox-caption").inner_text())
    assert captions == ["Illustration, pages 1–2", "Illustration, pages 3–4", "Illustration, pages 5–6"]
    assert page.locator("#lightbox-count").inner_text() == "3 of 12"  # a 24-page book: one per spread
    page.get_by_role("button", name="Previous image").click()
    assert page.locator("#lightbox-caption").inner_text() == "Illustration, pages 3–4"
    page.keyboard.press("Escape")
    page.locator("#lightbox").wait_for(state="hidden")
