"""A small, realistic data set for page-wide browser checks: orders at every stage, decisions in the audit log,
an error, a webhook delivery, and the main pages a reviewer and an admin open, by name."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from lhb_review.extensions import db
from lhb_review.models import AuditLog, ErrorLog, WebhookDelivery
from lhb_review.ops.demo_assets import make_order_assets
from tests.factories import make_order, make_stage, make_user

SPECS = {"name": "Maya", "age": 5, "pronouns": "she/her", "skin_tone": "medium",
         "hair": {"color": "brown", "style": "curly"}, "eyes": "brown", "glasses": False, "outfit": "explorer"}
BOOK = {"title": "Maya and the Hidden Treasure", "theme": "hidden treasure", "pages": 24, "trim_size": "8.5 x 8.5 in",
        "cover": "hardcover", "dedication": "For Maya, with love.", "language": "en"}
ADMIN = "admin.person@emo.littleherobooks.com"


def build_scene(app) -> dict:
    """Orders with real pictures and PDFs; returns the admin user and the main pages as {name: path}."""
    now = datetime.now(timezone.utc)
    orders = []
    for n, statuses in enumerate([("pending",), ("approved", "pending"), ("approved", "approved", "pending"),
                                  ("in_review",), ("rejected",), ("approved", "pending")], start=1):
        order_id = f"LHB-2026-{n:06d}"
        assets = make_order_assets(app.config["ASSET_DIR"], order_id, "my-first-adventure", SPECS, BOOK)
        order = make_order(order_id, platform="amazon" if n % 2 else "shopify", character_specs=SPECS,
                           book_specs=BOOK, r2_assets=assets, customer_first_name="Alexandrina",
                           customer_last_name="Montgomery-Featherstonehaugh",
                           amazon_order_id=f"113-{n:07d}-0000001" if n % 2 else None)
        for i, (stage, status) in enumerate(zip(("preBria", "postBria", "postPdf"), statuses)):
            make_stage(order, stage, status, created_at=now - timedelta(hours=60 - n * 3 - i))
        orders.append(order)
    admin = make_user(ADMIN, role="admin")
    make_user("second.reviewer@emo.littleherobooks.com")
    for i, (action, stage) in enumerate([("stage_approved", "preBria"), ("stage_approved", "postBria"),
                                         ("stage_rejected", "preBria"), ("stage_approved", "postPdf")]):
        db.session.add(AuditLog(order_id=orders[i].order_id, stage=stage, action=action, reviewer_email=ADMIN,
                                details={"status_before": "pending", "status_after": action.split("_")[1],
                                         "notes": "Hair colour does not match the specs." if "rejected" in action else ""},
                                created_at=now - timedelta(hours=2 + i)))
    db.session.add(ErrorLog(error_id="E-LAYO-UT01", error_type="RuntimeError", severity="error",
                            message="The print partner's API answered 502 Bad Gateway", details={}))
    db.session.add(WebhookDelivery(order_id=orders[0].order_id, stage="preBria", event="stage.approved",
                                   url="https://pipeline.example.com/hooks/lhb-review/decisions", payload={}))
    db.session.commit()
    first = orders[0].order_id
    return {
        "admin": admin,
        "pages": {
            "queue": "/queue",
            "stage-prebria": f"/orders/{first}/stages/preBria",
            "stage-postbria": f"/orders/{orders[1].order_id}/stages/postBria",
            "stage-postpdf": f"/orders/{orders[2].order_id}/stages/postPdf",
            "order": f"/orders/{first}",
            "timeline": f"/orders/{first}/timeline",
            "statistics": "/stats",
            "reject-reasons": "/reports/rejects",
            "admin-errors": "/admin/errors",
            "admin-users": "/admin/users",
            "admin-audit": "/admin/audit",
            "admin-webhooks": "/admin/deliveries/",
        },
    }
