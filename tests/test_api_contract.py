"""The API keeps its OpenAPI document: real responses validated against it, and a bounded schemathesis run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest

from lhb_review import review
from lhb_review.core.actors import Actor
from tests.factories import make_order_with_stages
from tests.pipeline_helpers import Api, asset, make_token, order_body

DRAFT = "https://json-schema.org/draft/2020-12/schema"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def spec(app, live_server):
    response = Api(live_server.url, None).get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def operation(spec: dict, method: str, url_path: str) -> tuple[str, dict]:
    """The documented operation answering ``method url_path`` (a concrete path under /api/v1)."""
    for template, item in spec["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, url_path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {url_path} is not in the OpenAPI document")


def check(spec: dict, response, method: str, url_path: str) -> None:
    """The response's status is documented for the operation and its body matches the documented schema."""
    template, op = operation(spec, method, url_path)
    documented = op["responses"].get(str(response.status_code))
    assert documented, f"{method} {template} answered {response.status_code}, which is not documented"
    schema = documented["content"]["application/json"]["schema"]
    root = {"$schema": DRAFT, "components": spec["components"], **schema}
    validator = jsonschema_rs.validator_for(root, validate_formats=True)
    errors = [str(e) for e in validator.iter_errors(response.json())]
    assert errors == [], f"{method} {template} {response.status_code}: {errors}"


def test_every_api_route_is_documented(app, spec):
    documented = {
        (path, method.upper())
        for path, item in spec["paths"].items()
        for method in item
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule[len("/api/v1") :])
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not documented"


def test_real_responses_match_the_document(app, live_server, spec):
    api = Api(live_server.url, make_token("contract"))
    hook = {"url": "https://pipeline.example/hooks", "secret": "0123456789abcdef0123"}
    calls = [
        ("PUT", "/orders/ORD-1", api.put("/orders/ORD-1", order_body(webhooks=[hook]))),
        ("PUT", "/orders/ORD-1", api.put("/orders/ORD-1", order_body(webhooks=[hook]))),
        ("PUT", "/orders/ORD-1", api.put("/orders/ORD-1", order_body(status="printing"))),
        ("PUT", "/orders/ORD-2", api.put("/orders/ORD-2", {"platform": "ebay"})),
        (
            "PUT",
            "/orders/ORD-2",
            api.put("/orders/ORD-2", data="{", headers={"Content-Type": "application/json"}),
        ),
        ("PUT", "/orders/ORD-2", api.put("/orders/ORD-2", data="x", headers={"Content-Type": "text/plain"})),
        ("GET", "/orders/ORD-1", api.get("/orders/ORD-1")),
        ("GET", "/orders/ORD-404", api.get("/orders/ORD-404")),
        (
            "PUT",
            "/orders/ORD-1/stages/preBria",
            api.put("/orders/ORD-1/stages/preBria", {"assets": [asset("a")]}),
        ),
        (
            "PUT",
            "/orders/ORD-1/stages/preBria",
            api.put("/orders/ORD-1/stages/preBria", {"assets": [asset("a")]}),
        ),
        ("PUT", "/orders/ORD-1/stages/preBria", api.put("/orders/ORD-1/stages/preBria", {"assets": []})),
        (
            "PUT",
            "/orders/ORD-9/stages/preBria",
            api.put("/orders/ORD-9/stages/preBria", {"assets": [asset("a")]}),
        ),
        ("GET", "/orders/ORD-1/stages/preBria", api.get("/orders/ORD-1/stages/preBria")),
        ("GET", "/orders/ORD-1/stages/postPdf", api.get("/orders/ORD-1/stages/postPdf")),
        ("GET", "/orders/ORD-1/stages/final", api.get("/orders/ORD-1/stages/final")),
        ("POST", "/orders/ORD-1/stages/preBria/approve", api.post("/orders/ORD-1/stages/preBria/approve")),
        ("POST", "/orders/ORD-1/stages/preBria/approve", api.post("/orders/ORD-1/stages/preBria/approve")),
        (
            "PUT",
            "/orders/ORD-1/stages/preBria",
            api.put("/orders/ORD-1/stages/preBria", {"assets": [asset("b")]}),
        ),
        ("GET", "/stages", api.get("/stages")),
        ("GET", "/stages", api.get("/stages", params={"limit": 0})),
        ("GET", "/openapi.json", api.get("/openapi.json")),
        ("GET", "/stages", Api(live_server.url, None).get("/stages")),
        ("PUT", "/orders/ORD-1", api.request("DELETE", "/orders/ORD-1")),
    ]
    order = make_order_with_stages("pending", "pending")
    review.reject(Actor(email="rev@example.com"), order.order_id, "preBria", notes="Wrong hair", reasons=["character_drift"])
    path = f"/orders/{order.order_id}/stages/preBria/approve"
    calls.append(("POST", path, api.post(path)))
    path = f"/orders/{order.order_id}/stages/postBria/approve"
    calls.append(("POST", path, api.post(path)))
    statuses = set()
    for method, path, response in calls:
        check(spec, response, "PUT" if response.status_code == 405 else method, path)
        statuses.add(response.status_code)
    assert statuses >= {200, 201, 400, 401, 404, 405, 409, 415, 422}


# --- schemathesis against the live server, bounded in examples and time


def test_schemathesis_finds_no_server_error_and_no_schema_violation(app, live_server, tmp_path):
    """Generated and mutated requests for every operation, with every check: no 5xx, every answer documented
    and conforming, schema-violating data refused and schema-valid data accepted.

    Schema-valid data is accepted when it answers 2xx, or a refusal that depends on the state and not on
    the body (an order id nobody created is a 404, a decided stage a 409): never a 422 or a 400.
    """
    (tmp_path / "schemathesis.toml").write_text(
        '[checks.positive_data_acceptance]\nexpected-statuses = ["200", "201", "401", "404", "409"]\n'
    )
    token = make_token("schemathesis")
    make_order_with_stages("pending", "pending", order_id="ORD-1")
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--url",
        f"{live_server.url}/api/v1",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "10",
        "--max-time",
        "20",
        "--seed",
        "20261125",
        "--generation-database",
        "none",
        "--request-timeout",
        "10",
        "--workers",
        "1",
        "--no-color",
    ]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    report = result.stdout[result.stdout.find("=== FAILURES") :] if "=== FAILURES" in result.stdout else result.stdout
    assert result.returncode == 0, report[:12000] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
