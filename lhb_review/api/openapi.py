"""The OpenAPI 3.1 document of /api/v1: every endpoint, body and error, kept next to the code it describes."""

from __future__ import annotations

from lhb_review.pipeline.orders import PLATFORMS
from lhb_review.core.stages import STAGE_NAMES, StageStatus
from lhb_review.review.checks.results import CHECK_IDS, OUTCOMES

NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_DATETIME = {"type": ["string", "null"], "format": "date-time"}
NULLABLE_OBJECT = {"type": ["object", "null"]}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


ERRORS = {
    "400": error("Malformed JSON body (code `malformed_json`)."),
    "401": error("Missing, unknown or revoked token (codes `unauthorized`, `invalid_token`)."),
    "404": error("No such order or stage, or an unknown stage name (codes `not_found`, `unknown_stage`)."),
    "405": error(
        "Method not allowed on this path (code `method_not_allowed`); the Allow header lists the methods."
    ),
    "413": error("Body larger than API_MAX_BODY_BYTES (code `request_entity_too_large`)."),
    "415": error("Body is not application/json (code `unsupported_media_type`)."),
    "422": error("Invalid fields or parameters (code `invalid`); `fields` maps each to its message."),
}


def errors(*codes: str, conflict: str | None = None) -> dict:
    result = {code: ERRORS[code] for code in codes}
    if conflict:
        result["409"] = error(conflict)
    return result


def json_response(description: str, schema: dict, headers: dict | None = None) -> dict:
    body = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        body["headers"] = headers
    return body


ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "description": "The pipeline's order id: letters, digits, '#', '.', '_', ':' or '-'.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
STAGE = {
    "name": "stage",
    "in": "path",
    "required": True,
    "description": "The review stage, in pipeline order.",
    "schema": {"type": "string", "enum": list(STAGE_NAMES)},
}
LOCATION = {"Location": {"description": "Where the resource can be read.", "schema": {"type": "string"}}}

ASSET = {
    "type": "object",
    "required": ["key", "content_type", "sha256"],
    "additionalProperties": False,
    "properties": {
        "key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 1000,
            "description": "Storage key, relative (no '..', no leading '/').",
        },
        "label": {"type": ["string", "null"], "maxLength": 200},
        "content_type": {"type": "string", "example": "image/png"},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}

WEBHOOK_ITEM = {
    "oneOf": [
        {"type": "string", "format": "uri", "description": "A callback URL, signed with WEBHOOK_SECRET."},
        {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "format": "uri"},
                "secret": {
                    "type": ["string", "null"],
                    "minLength": 16,
                    "maxLength": 256,
                    "description": "Signs this URL's deliveries instead of WEBHOOK_SECRET; never returned.",
                },
            },
        },
    ]
}

ORDER_INPUT = {
    "type": "object",
    "required": [
        "platform",
        "project",
        "customer_first_name",
        "customer_last_name",
        "customer_email",
        "order_date",
    ],
    "additionalProperties": False,
    "properties": {
        "platform": {"type": "string", "enum": list(PLATFORMS)},
        "amazon_order_id": {
            "type": ["string", "null"],
            "maxLength": 255,
            "description": "Required when platform is amazon.",
        },
        "project": {"type": "string", "minLength": 1, "maxLength": 100},
        "customer_first_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "customer_last_name": {"type": "string", "minLength": 1, "maxLength": 100},
        "customer_email": {"type": "string", "format": "email", "maxLength": 255},
        "order_date": {"type": "string", "format": "date-time", "description": "ISO 8601 with a time zone."},
        "status": {
            "type": ["string", "null"],
            "pattern": "^[a-z][a-z0-9_]{0,49}$",
            "description": "The order's own status; `received` when left out.",
        },
        "ai_generation_started_at": NULLABLE_DATETIME,
        "character_hash": {"type": ["string", "null"], "maxLength": 100},
        "character_path": {"type": ["string", "null"], "maxLength": 500},
        "template_path": {"type": ["string", "null"], "maxLength": 500},
        "character_specs": NULLABLE_OBJECT,
        "book_specs": NULLABLE_OBJECT,
        "order_details": NULLABLE_OBJECT,
        "asset_prefix": {"type": ["string", "null"], "maxLength": 500},
        "webhooks": {"type": ["array", "null"], "maxItems": 10, "items": WEBHOOK_ITEM},
    },
}

CHECK_RESULT = {
    "type": "object",
    "required": ["check", "outcome", "message", "asset", "page"],
    "properties": {
        "check": {"type": "string", "enum": list(CHECK_IDS), "description": "A stable check id (see the README)."},
        "outcome": {"type": "string", "enum": list(OUTCOMES),
                    "description": "error: the check itself could not run on the file."},
        "message": {"type": "string"},
        "asset": {**NULLABLE_STRING, "description": "The asset key the result concerns."},
        "page": {"type": ["integer", "null"], "minimum": 1, "description": "The PDF page it concerns."},
    },
}

CHECKS = {
    "type": "object",
    "description": "The machine checks of the stage's current files: pending until a worker has run them, "
    "then done with every result, failures first.",
    "required": ["state", "results"],
    "properties": {
        "state": {"type": "string", "enum": ["pending", "done"]},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/CheckResult"}},
    },
}

STAGE_VIEW = {
    "type": "object",
    "required": [
        "order_id",
        "stage",
        "status",
        "review_status",
        "reviewer",
        "notes",
        "reasons",
        "reviewed_at",
        "submitted_at",
        "updated_at",
        "assets",
    ],
    "properties": {
        "order_id": {"type": "string"},
        "stage": {"type": "string", "enum": list(STAGE_NAMES)},
        "status": {
            "type": "string",
            "enum": ["approved", "pending"],
            "description": "The approval store's answer (getStageStatus).",
        },
        "review_status": {
            "type": ["string", "null"],
            "enum": [s.value for s in StageStatus] + [None],
            "description": "The review state; null when the stage was never submitted.",
        },
        "reviewer": NULLABLE_STRING,
        "notes": NULLABLE_STRING,
        "reasons": {"type": "array", "description": "Reason codes of the latest decision."},
        "reviewed_at": NULLABLE_DATETIME,
        "submitted_at": NULLABLE_DATETIME,
        "updated_at": NULLABLE_DATETIME,
        "assets": {"type": "array", "items": {"type": "object"}},
        "checks": {**CHECKS, "description": CHECKS["description"] + " Given by the single-stage answers."},
        "platform": NULLABLE_STRING,
        "project": NULLABLE_STRING,
    },
}

ORDER_VIEW = {
    "type": "object",
    "required": [
        "order_id",
        "platform",
        "project",
        "customer_first_name",
        "customer_last_name",
        "customer_email",
        "order_date",
        "status",
        "webhooks",
        "stages",
    ],
    "properties": {
        **{name: schema for name, schema in ORDER_INPUT["properties"].items() if name != "webhooks"},
        "status": {"type": "string"},
        "webhooks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["url", "has_secret"],
                "properties": {"url": {"type": "string"}, "has_secret": {"type": "boolean"}},
            },
        },
        "created_at": NULLABLE_DATETIME,
        "updated_at": NULLABLE_DATETIME,
        "stages": {"type": "array", "items": ref("Stage")},
    },
}

WEBHOOK_EVENT = {
    "type": "object",
    "required": [
        "event",
        "delivery_id",
        "order_id",
        "stage",
        "occurred_at",
        "status",
        "review_status",
        "reviewer",
        "notes",
        "reasons",
        "reviewed_at",
        "details",
    ],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["stage_approved", "stage_rejected", "stage_reopened", "stage_undone", "approval_voided"],
        },
        "delivery_id": {
            "type": "string",
            "format": "uuid",
            "description": "Equals the Idempotency-Key header.",
        },
        "order_id": {"type": "string"},
        "stage": {"type": "string", "enum": list(STAGE_NAMES)},
        "occurred_at": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": ["approved", "pending"]},
        "review_status": {"type": ["string", "null"], "enum": [s.value for s in StageStatus] + [None]},
        "reviewer": NULLABLE_STRING,
        "notes": NULLABLE_STRING,
        "reasons": {"type": "array"},
        "reviewed_at": NULLABLE_DATETIME,
        "checks": {"oneOf": [{"$ref": "#/components/schemas/Checks"}, {"type": "null"}]},
        "details": {
            "type": "object",
            "description": "status_before; for approval_voided the reason and the previous decision.",
        },
    },
}

WEBHOOK_HEADERS = {
    "X-LHB-Signature": "sha256=<hex HMAC-SHA256 of '<X-LHB-Timestamp>.<raw body>'> with the URL's secret or "
    "WEBHOOK_SECRET.",
    "X-LHB-Timestamp": "Unix seconds when the attempt was signed; refuse old ones (replays).",
    "Idempotency-Key": "The delivery id: the same on every retry of one delivery; de-duplicate on it.",
    "X-LHB-Delivery": "The delivery id again.",
    "X-LHB-Event": "The event name.",
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable, machine-readable."},
                "message": {"type": "string", "description": "For people."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Per field (or field path such as assets[0].sha256): what is wrong.",
                },
                "details": {
                    "type": "object",
                    "description": "Facts about a conflict, e.g. waiting_for, status.",
                },
            },
        }
    },
}

TEXT_ONLY_NOTES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"notes": {"type": ["string", "null"], "maxLength": 5000}},
}


def build_spec() -> dict:
    """The document served at /api/v1/openapi.json."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lhb-review pipeline API",
            "version": "1.0.0",
            "description": (
                "How the book pipeline hands work to reviewers and learns their decisions. JSON in and out; "
                "every error has the shape {error: {code, message, fields?, details?}}. Decisions are also "
                "pushed to the callback URLs of an order (webhooks), signed with HMAC-SHA256."
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            "/orders/{order_id}": {
                "parameters": [ORDER_ID],
                "put": {
                    "operationId": "putOrder",
                    "summary": "Create or replace an order (idempotent)",
                    "description": "r2_assets are not part of an order body: submit them per stage.",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("OrderInput")}},
                    },
                    "responses": {
                        "201": json_response("Created.", ref("OrderResult"), LOCATION),
                        "200": json_response(
                            "Updated, or unchanged (same body again).", ref("OrderResult"), LOCATION
                        ),
                        **errors("400", "401", "404", "405", "413", "415", "422"),
                    },
                },
                "get": {
                    "operationId": "getOrder",
                    "summary": "An order with its stages",
                    "responses": {
                        "200": json_response("The order.", ref("Order")),
                        **errors("401", "404", "405"),
                    },
                },
            },
            "/orders/{order_id}/stages/{stage}": {
                "parameters": [ORDER_ID, STAGE],
                "put": {
                    "operationId": "submitStage",
                    "summary": "Submit a stage for review with its assets",
                    "description": (
                        "Creates the stage as pending. Different assets (by key and sha256) reset it to "
                        "pending: a rejected stage is reopened, an approved one loses its approval "
                        "(approval_voided webhook). The same assets again change nothing."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["assets"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "assets": {
                                            "type": "array",
                                            "minItems": 1,
                                            "maxItems": 200,
                                            "items": ASSET,
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "201": json_response("Stage created.", ref("StageResult"), LOCATION),
                        "200": json_response(
                            "Resubmitted (assets changed) or unchanged.", ref("StageResult"), LOCATION
                        ),
                        **errors("400", "401", "404", "405", "413", "415", "422"),
                    },
                },
                "get": {
                    "operationId": "getStage",
                    "summary": "The seed's getStageStatus answer plus the review state",
                    "responses": {
                        "200": json_response("The stage.", ref("Stage")),
                        **errors("401", "404", "405"),
                    },
                },
            },
            "/orders/{order_id}/stages/{stage}/approve": {
                "parameters": [ORDER_ID, STAGE],
                "post": {
                    "operationId": "approveStage",
                    "summary": "The seed's approveStage, through the reviewers' decision rules",
                    "description": (
                        "Audited with the token's name as reviewer. Repeating it for a stage this token "
                        "approved answers 200 with result already_approved and writes nothing. When machine "
                        "checks fail on the stage, notes saying why are required: without them the answer is "
                        "422 with code checks_failing (details.failing lists the check ids); with them the "
                        "approval's audit row lists the overridden check ids."
                    ),
                    "requestBody": {
                        "required": False,
                        "content": {"application/json": {"schema": TEXT_ONLY_NOTES}},
                    },
                    "responses": {
                        "200": json_response(
                            "Approved (or already approved by this token).", ref("StageResult")
                        ),
                        **errors(
                            "400",
                            "401",
                            "404",
                            "405",
                            "413",
                            "415",
                            "422",
                            conflict="Decided already (already_decided) or an earlier stage is not "
                            "approved (stage_out_of_order).",
                        ),
                    },
                },
            },
            "/stages": {
                "get": {
                    "operationId": "listStages",
                    "summary": "Stages by status, oldest first (keyset-paginated)",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "required": False,
                            "description": "Comma-separated statuses; default pending,in_review.",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "stage",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": list(STAGE_NAMES)},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "description": "next_cursor of the previous page.",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": json_response(
                            "A page of stages.",
                            {
                                "type": "object",
                                "required": ["items", "next_cursor"],
                                "properties": {
                                    "items": {"type": "array", "items": ref("Stage")},
                                    "next_cursor": NULLABLE_STRING,
                                },
                            },
                        ),
                        **errors("401", "405", "422"),
                    },
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": json_response("The OpenAPI document.", {"type": "object"}),
                        **errors("405"),
                    },
                },
            },
        },
        "webhooks": {
            "decision": {
                "post": {
                    "operationId": "decisionWebhook",
                    "summary": "Sent to the callback URLs of an order on each decision or voided approval",
                    "parameters": [
                        {
                            "name": name,
                            "in": "header",
                            "required": True,
                            "description": text,
                            "schema": {"type": "string"},
                        }
                        for name, text in WEBHOOK_HEADERS.items()
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("WebhookEvent")}},
                    },
                    "responses": {
                        "2XX": {"description": "Received; any other answer is retried with backoff."}
                    },
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token from `flask tokens create NAME`.",
                }
            },
            "schemas": {
                "OrderInput": ORDER_INPUT,
                "Order": ORDER_VIEW,
                "OrderResult": {
                    "type": "object",
                    "required": ["result", "changed", "order"],
                    "properties": {
                        "result": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                        "changed": {"type": "array", "items": {"type": "string"}},
                        "order": ref("Order"),
                    },
                },
                "Stage": STAGE_VIEW,
                "Checks": CHECKS,
                "CheckResult": CHECK_RESULT,
                "StageResult": {
                    "type": "object",
                    "required": ["result", "stage"],
                    "properties": {
                        "result": {
                            "type": "string",
                            "enum": ["created", "resubmitted", "unchanged", "approved", "already_approved"],
                        },
                        "stage": ref("Stage"),
                    },
                },
                "Asset": ASSET,
                "Error": ERROR,
                "WebhookEvent": WEBHOOK_EVENT,
            },
        },
    }
