"""Error pages people meet: a missing asset gets the styled page (the page policy, not the asset one), and 403
and 404 speak plainly instead of Werkzeug's generic wording; /favicon.ico is no longer a 404."""
from __future__ import annotations

from tests.factories import make_user


def test_a_missing_asset_answers_the_styled_404_page(app, login_as):
    response = login_as(make_user()).get("/assets/orders/nothing/here.png")
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "style-src 'self'" in response.headers["Content-Security-Policy"]
    assert "/static/css/app.css" in html and "There is nothing at this address" in html
    assert "requested URL was not found" not in html


def test_a_reviewer_on_an_admin_page_reads_a_plain_403(app, login_as):
    response = login_as(make_user()).get("/admin/users")
    html = response.get_data(as_text=True)
    assert response.status_code == 403
    assert "You do not have access to this page" in html and "don't have the permission" not in html


def test_favicon_ico_points_at_the_icon(app, client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response.headers["Location"].endswith("/static/favicon.svg")
    assert client.get("/static/favicon.svg").status_code == 200
