"""Secrets and personal data stay out of logs: a failing write carrying a webhook secret and a customer's name
leaves neither in the error log, on the admin error page or in the application log."""
from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text

from lhb_review.extensions import db
from lhb_review.models import ErrorLog, Order
from lhb_review.ops.errorlog import redact_secrets
from tests.factories import make_user
from tests.pipeline_helpers import make_token, order_body

SECRET = "whsec-Zq8v3LmN0pQrSt7uVwXy"
CUSTOMER = "Philippa-Quennell"


@pytest.fixture
def failing_order_writes(app):
    """Every INSERT into orders fails inside the database, after the app has sent all its parameters."""
    db.session.execute(text(
        "CREATE FUNCTION test_refuse_orders() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the orders table refuses writes today'; END $$"))
    db.session.execute(text("CREATE TRIGGER test_refuse_orders BEFORE INSERT ON orders "
                            "FOR EACH ROW EXECUTE FUNCTION test_refuse_orders()"))
    db.session.commit()
    yield
    db.session.rollback()
    db.session.execute(text("DROP TRIGGER test_refuse_orders ON orders"))
    db.session.execute(text("DROP FUNCTION test_refuse_orders()"))
    db.session.commit()


def test_a_failing_write_leaves_no_secret_or_name_in_any_log(app, failing_order_writes, caplog, login_as):
    token = make_token()
    body = order_body(customer_last_name=CUSTOMER,
                      webhooks=[{"url": "https://hooks.example.com/lhb", "secret": SECRET}])
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().put("/api/v1/orders/ORD-LEAK", json=body,
                                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 500 and response.is_json
    db.session.expire_all()
    assert db.session.scalar(select(Order).where(Order.order_id == "ORD-LEAK")) is None
    [row] = db.session.scalars(select(ErrorLog)).all()
    assert "refuses writes today" in row.message, "the error itself is still recorded"
    stored = f"{row.message}\n{row.stack_trace}\n{row.details}"
    logged = "\n".join(r.getMessage() + (logging.Formatter().formatException(r.exc_info) if r.exc_info else "")
                       for r in caplog.records)
    assert row.error_id in logged
    page = login_as(make_user("ops@example.com", role="admin")).get(f"/admin/errors/{row.error_id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and row.error_id in html
    for where, content in (("error_logs", stored), ("application log", logged), ("admin page", html)):
        assert SECRET not in content, f"the webhook secret is in the {where}"
        assert CUSTOMER not in content, f"the customer's name is in the {where}"
        assert token not in content, f"the API token is in the {where}"


@pytest.mark.parametrize("raw", [
    "{'secret': 'abc123'}", '{"secret": "abc123"}', "password=abc123&x=1", "Authorization: Bearer abc123",
    "session_token = 'abc123'", '"webhook_secret":"abc123"',
])
def test_known_secret_fields_are_redacted(raw):
    assert "abc123" not in redact_secrets(raw)
    assert "[redacted]" in redact_secrets(raw)
