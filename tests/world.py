"""A small world for route walks: an order with stages and assets, one user per role, a disabled user, an API
token when the app has tokens, and a signed-in client for each identity."""
from __future__ import annotations

from dataclasses import dataclass, field

from lhb_review.extensions import db
from lhb_review.models import ErrorLog
from lhb_review.ops.demo_assets import draw_page, pdf_bytes, png_bytes, write_asset
from lhb_review.ops import users as user_service
from lhb_review.core.actors import Actor
from tests.conftest import Browser
from tests.factories import PASSWORD, make_order_with_stages, make_user
from tests.security_routes import Route

ADMIN_ACTOR = Actor(email="setup@example.com", is_admin=True)


def make_api_token(name: str = "walk-token") -> str | None:
    """A bearer token through the app's token service, or None while the app has no API tokens."""
    try:
        from lhb_review.pipeline import tokens
    except ImportError:
        return None
    for fn in ("create_token", "create", "issue"):
        create = getattr(tokens, fn, None)
        if create is not None:
            result = create(Actor(email="setup@example.com", kind="system"), name)
            if isinstance(result, tuple):
                result = next((part for part in result if isinstance(part, str)), None)
            return result if isinstance(result, str) else getattr(result, "token", None)
    return None


@dataclass
class World:
    app: object
    make_client: object
    values: dict[str, str]
    users: dict[str, object]
    token: str | None
    clients: dict[str, Browser] = field(default_factory=dict)

    @classmethod
    def build(cls, app, make_client) -> "World":
        order = make_order_with_stages("approved", "pending", "pending")
        picture = draw_page({"name": "Maya"}, "my-first-adventure", {"title": "Maya"}, 1)
        root = app.config["ASSET_DIR"]
        png = write_asset(root, f"orders/{order.order_id}/postBria/page-1.png", png_bytes(picture), "Page 1",
                          "image/png")
        write_asset(root, f"orders/{order.order_id}/postPdf/book.pdf", pdf_bytes([picture]), "Book",
                    "application/pdf")
        users = {
            "reviewer": make_user("walk-reviewer@example.com"),
            "admin": make_user("walk-admin@example.com", role="admin"),
            "disabled": make_user("walk-disabled@example.com"),
        }
        error = ErrorLog(error_id="E-WALK-0001", error_type="RuntimeError", severity="error",
                         message="a recorded failure", details={"path": "/queue"})
        db.session.add(error)
        db.session.commit()
        values = {
            "order_id": order.order_id,
            "stage": "postBria",
            "key": png["key"],
            "filename": "css/app.css",
            "email": users["reviewer"].email,
            "user_id": str(users["reviewer"].id),
            "error_id": error.error_id,
            "action": "approve",
            "page": "1",
            "delivery_id": "00000000-0000-0000-0000-000000000000",
            "batch_id": "00000000-0000-0000-0000-0000000000b1",
        }
        return cls(app, make_client, values, users, make_api_token())

    def client(self, identity: str) -> Browser:
        if identity in self.clients:
            return self.clients[identity]
        browser = self.make_client()
        if identity in ("reviewer", "admin", "disabled"):
            response = browser.login(self.users[identity].email, PASSWORD)
            assert response.status_code == 302, f"{identity} could not sign in"
        browser.refresh_csrf("/login" if identity in ("anonymous", "token") else "/queue")
        if identity == "disabled":
            user_service.set_active(ADMIN_ACTOR, self.users["disabled"].email, False)
        self.clients[identity] = browser
        return browser

    def form(self, route: Route) -> dict[str, str]:
        """A well-formed body for the route, so the walk tests who may act rather than input validation."""
        forms = {
            "auth.login": {"email": self.users["reviewer"].email, "password": PASSWORD},
            "admin.create_user": {"email": "walk-new@example.com", "password": "a long new password",
                                  "role": "reviewer"},
            "admin.change_role": {"role": "admin"},
            "review.approve": {"notes": "looks right"},
            "review.reject": {"notes": "the colours are off", "reasons": "print_quality"},
            "admin.reset_password": {"password": "another long password"},
            "batch.submit": {"stage": "postBria", "card-0": self.values["order_id"], "choice-0": "flag"},
        }
        return dict(forms.get(route.endpoint, {}))

    def headers(self, identity: str) -> dict[str, str]:
        if identity == "token":
            return {"Authorization": f"Bearer {self.token or 'not-a-real-token'}"}
        return {}

    def request(self, browser: Browser, route: Route, identity: str, *, data: dict | None = None,
                json: object | None = None, headers: dict | None = None, query: str = ""):
        url = route.url(self.values) + (f"?{query}" if query else "")
        all_headers = {**self.headers(identity), **(headers or {})}
        if route.method == "GET":
            return browser.get(url, headers=all_headers)
        if json is not None or url.startswith("/api/"):
            return browser.client.open(url, method=route.method, json=json if json is not None else {},
                                       headers=all_headers)
        if browser.csrf:
            all_headers.setdefault("X-CSRFToken", browser.csrf)
        body = {"csrf_token": browser.csrf or "", **(self.form(route) if data is None else data)}
        return browser.client.open(url, method=route.method, data=body, headers=all_headers)
