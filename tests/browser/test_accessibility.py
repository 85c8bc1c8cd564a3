"""axe-core (from npm, see package.json) run in Chromium on the pages reviewers and admins use: no serious or
critical violations."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.scene import build_scene

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PAGES = ["queue", "stage-prebria", "stage-postbria", "stage-postpdf", "order", "timeline", "statistics",
         "reject-reasons", "admin-errors", "admin-users", "admin-audit", "admin-webhooks"]


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        pytest.skip("axe-core is not installed: run `make install-dev` (it runs npm ci)")
    return AXE.read_text()


def serious_violations(page, axe_source: str) -> list[str]:
    # Evaluated through the debugger protocol, so the page's own policy (no inline scripts) stays as it is.
    page.evaluate(axe_source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
          .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '));
    }""")
    return result


def test_axe_sees_a_violation_when_there_is_one(page, browser_login, app, axe_source):
    """The check can fail: an image without a text alternative is reported."""
    scene = build_scene(app)
    browser_login(page, scene["admin"])
    page.goto("/queue")
    page.evaluate("() => document.querySelector('main').appendChild(document.createElement('img')).src = '/static/favicon.svg'")
    assert any(v.startswith("image-alt") for v in serious_violations(page, axe_source))


def test_main_pages_have_no_serious_accessibility_violations(page, browser_login, app, axe_source):
    scene = build_scene(app)
    browser_login(page, scene["admin"])
    found = {}
    for name in PAGES:
        page.goto(scene["pages"][name])
        page.wait_for_load_state("networkidle")
        violations = serious_violations(page, axe_source)
        if violations:
            found[name] = violations
    assert found == {}
