"""The app's routes, read from its URL map, and the access rule declared for each: shared by the access,
CSRF and bad-input tests. A route nobody declared fails those tests until its rule is added here."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from lhb_review import create_app

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Who may use a route. The walk checks every identity against the level of every route.
PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed_in"  # reviewers and admins; others are sent to the sign-in page
ADMIN = "admin"  # admins; reviewers get 403, others are sent to the sign-in page
API = "api"  # a valid bearer token; everyone else gets a 401 JSON error, never a redirect
OPEN_PROBE = "probe"  # health probes: anyone, no session needed

# (endpoint, method) -> level, or {value of the route's VARIES_BY parameter: level}.
ACCESS: dict[tuple[str, str], str | dict[str, str]] = {
    ("static", "GET"): PUBLIC,
    ("assets.favicon", "GET"): PUBLIC,
    ("auth.login", "GET"): PUBLIC,
    ("auth.login", "POST"): PUBLIC,
    ("auth.logout", "POST"): SIGNED_IN,
    ("queue.index", "GET"): SIGNED_IN,
    ("assets.file", "GET"): SIGNED_IN,
    # reviewing
    ("orders.order", "GET"): SIGNED_IN,
    ("review.stage", "GET"): SIGNED_IN,
    ("review.action_page", "GET"): SIGNED_IN,
    ("review.approve", "POST"): SIGNED_IN,
    ("review.reject", "POST"): SIGNED_IN,
    ("review.reopen", "POST"): ADMIN,
    # review flow: claims, undo, replacement, compare, timeline, reports
    ("review.claim_action", "POST"): SIGNED_IN,  # claim, renew, release, takeover
    ("review.presence", "GET"): SIGNED_IN,
    ("review.panel", "GET"): SIGNED_IN,
    ("review.checks_panel", "GET"): SIGNED_IN,
    ("review.undo_decision", "POST"): SIGNED_IN,
    ("queue.start", "GET"): SIGNED_IN,
    ("review.go_next", "GET"): SIGNED_IN,
    ("review.replace", "POST"): SIGNED_IN,
    ("review.pdf_page", "GET"): SIGNED_IN,
    ("review.proof", "GET"): SIGNED_IN,
    ("orders.order_timeline", "GET"): SIGNED_IN,
    ("stats.reject_report", "GET"): SIGNED_IN,
    # batch review
    ("batch.open_batch", "GET"): SIGNED_IN,
    ("batch.show", "GET"): SIGNED_IN,
    ("batch.submit", "POST"): SIGNED_IN,
    ("batch.undo", "POST"): SIGNED_IN,
    ("batch.release", "POST"): SIGNED_IN,
    # pipeline API
    ("api.openapi", "GET"): PUBLIC,
    ("api.put_order", "PUT"): API,
    ("api.get_order", "GET"): API,
    ("api.put_stage", "PUT"): API,
    ("api.get_stage", "GET"): API,
    ("api.approve_stage", "POST"): API,
    ("api.list_stages", "GET"): API,
    ("deliveries.index", "GET"): ADMIN,
    ("deliveries.detail", "GET"): ADMIN,
    ("deliveries.retry", "POST"): ADMIN,
    # operations
    ("health.healthz", "GET"): OPEN_PROBE,
    ("health.readyz", "GET"): OPEN_PROBE,
    ("health.metrics", "GET"): OPEN_PROBE,  # restricted at the reverse proxy (docs/operations.md)
    ("stats.index", "GET"): SIGNED_IN,
    ("admin.index", "GET"): ADMIN,
    ("admin.errors", "GET"): ADMIN,
    ("admin.error_detail", "GET"): ADMIN,
    ("admin.resolve_error", "POST"): ADMIN,
    ("admin.users", "GET"): ADMIN,
    ("admin.create_user", "POST"): ADMIN,
    ("admin.disable_user", "POST"): ADMIN,
    ("admin.enable_user", "POST"): ADMIN,
    ("admin.change_role", "POST"): ADMIN,
    ("admin.reset_password", "POST"): ADMIN,
    ("admin.audit_log", "GET"): ADMIN,
    ("admin.audit_csv", "GET"): ADMIN,
}

# A route whose rule depends on one of its URL parameters names it here; ACCESS then maps each value.
VARIES_BY: dict[str, str] = {}

# Endpoints exempt from the CSRF walk, with the reason.
CSRF_EXEMPT_PREFIXES = ("/api/",)  # bearer-token API: no cookies, no CSRF


@dataclass(frozen=True)
class Route:
    endpoint: str
    rule: str
    method: str
    arguments: tuple[str, ...]
    variant: str | None = None
    level: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        suffix = f"[{self.variant}]" if self.variant else ""
        return f"{self.method} {self.rule}{suffix}"

    @property
    def state_changing(self) -> bool:
        return self.method not in SAFE_METHODS

    def url(self, values: dict[str, str]) -> str:
        path = self.rule
        for name in self.arguments:
            value = self.variant if VARIES_BY.get(self.rule) == name and self.variant else values.get(name)
            if value is None:
                raise LookupError(f"no test value for URL parameter <{name}> of {self.rule}: add one to PARAMS")
            path = _fill(path, name, str(value))
        return path


def _fill(path: str, name: str, value: str) -> str:
    import re

    return re.sub(r"<(?:[^:<>]+:)?" + re.escape(name) + r">", value, path)


def url_map_app():
    """An app built only to read its URL map (it never connects to a database)."""
    return create_app({"TESTING": True}, env={
        "APP_ENV": "test", "SECRET_KEY": "url-map", "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
    })


def all_routes() -> tuple[list[Route], list[str]]:
    """Every (rule, method, variant) of the app, with its declared level; and what is undeclared or stale."""
    app = url_map_app()
    routes, problems, seen = [], [], set()
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            key = (rule.endpoint, method)
            seen.add(key)
            declared = ACCESS.get(key)
            if declared is None:
                problems.append(f"{method} {rule.rule} (endpoint {rule.endpoint}): declare its access in ACCESS")
                continue
            # The URL's own parameters, in order (a rule's defaults are arguments too, but not in its URL).
            arguments = tuple(re.findall(r"<(?:[^:<>]+:)?([A-Za-z_]\w*)>", rule.rule))
            if isinstance(declared, dict):
                for variant, level in declared.items():
                    routes.append(Route(rule.endpoint, rule.rule, method, arguments, variant, level))
            else:
                routes.append(Route(rule.endpoint, rule.rule, method, arguments, None, declared))
    for key in ACCESS:
        if key not in seen:
            problems.append(f"{key} is declared in ACCESS but the app has no such route: remove it")
    return routes, problems


ROUTES, ROUTE_PROBLEMS = all_routes()
