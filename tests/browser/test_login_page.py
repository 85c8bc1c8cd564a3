"""A reviewer signs in through the real login form in Chromium and lands on the queue."""
from tests.factories import make_user


def test_sign_in_lands_on_the_queue(page, browser_login, screenshot):
    user = make_user("browser@example.com")
    browser_login(page, user)
    assert page.locator("h1").first.inner_text().strip() != ""
    assert "browser@example.com" in page.content()
    assert screenshot(page, "queue-after-login").exists()
