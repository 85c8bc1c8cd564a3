"""The pipeline API's bodies as Pydantic models: the one source for validation, serialisation and OpenAPI.

Every rule a request body must keep is declared here once, in a form JSON Schema can say too (types,
lengths, ``^...$`` patterns evaluated as full matches by pydantic-core's regex engine, ``uniqueItems``),
so the generated document and the validation agree by construction. Each field type carries the message
a refusal answers with (``says``), so the 422 ``fields`` keep their wording.

The models live in core because the review core (stage assets, webhook targets) validates with them too;
the one rule that depends on a service, judging a callback URL, is passed in through the validation
context (``url_problem``) so this module imports nothing above it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Callable, Literal, Union  # noqa: F401 - Union: in JsonValue's text

from typing_extensions import TypeAliasType
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainValidator,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

from lhb_review.core.timestamps import parse_timestamp
from lhb_review.core.errors import Invalid
from lhb_review.core.stages import STAGE_NAMES, StageStatus

PLATFORMS = ("shopify", "amazon", "etsy", "direct")
STATUSES = tuple(s.value for s in StageStatus)
EVENTS = ("stage_approved", "stage_rejected", "stage_reopened", "stage_undone", "approval_voided", "stage_voided")
MAX_ASSETS, MAX_KEY, MAX_LABEL = 200, 1000, 200
MAX_WEBHOOKS, MAX_URL, MIN_SECRET, MAX_SECRET = 10, 2000, 16, 256
MAX_NOTES = 5000
MAX_JSON_DEPTH = 20
DEFAULT_LIMIT, MAX_LIMIT = 50, 200

# What "blank" means, spelled out: the same six ASCII characters for the pattern and for stripping, so no
# regex engine's idea of \s (which differ on Unicode) can make the document and the check disagree.
BLANK = " \t\n\v\f\r"
NO_NUL = r"^[^\u0000]*$"
NOT_BLANK = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r ][^\u0000]*$"
BLANK_OR_TEXT = r"^(?:[^\u0000]*[^\u0000\t\n\u000b\f\r ][^\u0000]*)?$"
ORDER_ID = r"^[A-Za-z0-9#][A-Za-z0-9#._:\-]{0,254}$"
ORDER_STATUS = r"^[a-z][a-z0-9_]{0,49}$"
SHA256 = r"^[0-9a-f]{64}$"
CONTENT_TYPE = r"^[a-z0-9][a-z0-9.+\-]{0,63}/[a-z0-9][a-z0-9.+\-]{0,127}$"
# A relative storage key: segments of anything but '/', '\' and control characters, never '..', and no
# leading '/'. Written without look-arounds so every engine reads it the same way.
_SEG_CHAR = r"[^/\\\u0000-\u001f]"
_SEGMENT = rf"(?:[^./\\\u0000-\u001f]{_SEG_CHAR}*|\.[^./\\\u0000-\u001f]{_SEG_CHAR}*|\.|\.\.{_SEG_CHAR}+)"
STORAGE_KEY = rf"^{_SEGMENT}(?:/{_SEGMENT}?)*$"
# RFC 3339 with an offset PostgreSQL can store (under 16 hours) and a year from 1900 to 2200.
DATE_TIME = (
    r"^(?:190[1-9]|19[1-9][0-9]|2[01][0-9]{2})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3])"
    r":[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:[Zz]|[+\-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
)
StageName = Literal[STAGE_NAMES]  # type: ignore[valid-type]
STATUS_LIST = rf"^(?:{'|'.join(STATUSES)})(?:,(?:{'|'.join(STATUSES)}))*$"


def says(message: str, *, blank: str | None = None) -> WrapValidator:
    """Refuse whatever the wrapped type refuses with ``message``: the per-field text of a 422.
    ``blank`` is the message for empty or blank text, when that deserves its own ("Required.")."""

    def wrap(value: Any, handler: Callable[[Any], Any]) -> Any:
        try:
            return handler(value)
        except ValidationError:
            if blank and isinstance(value, str) and not value.strip(BLANK):
                raise PydanticCustomError("invalid", blank) from None
            raise PydanticCustomError("invalid", message) from None

    return WrapValidator(wrap)


def refuse(message: str, path: str | None = None) -> PydanticCustomError:
    """A refusal with our own message, optionally at a path below where it was raised (``[1].key``)."""
    return PydanticCustomError("invalid", message, {"path": path} if path else None)


def stripped(value: str) -> str:
    return value.strip(BLANK)


def Text(limit: int, message: str, *, required: bool = False):  # noqa: N802 - a type factory
    """Text PostgreSQL can store, at most ``limit`` characters, stripped; blank means left out (or Required)."""
    pattern = NOT_BLANK if required else BLANK_OR_TEXT
    description = "Not blank; no NUL; trimmed." if required else "No NUL; trimmed; empty means none."
    return Annotated[
        str,
        Field(max_length=limit, pattern=pattern, min_length=1 if required else 0, description=description),
        says(message, blank="Required." if required else "Cannot be blank."),
        AfterValidator(stripped),
    ]


DATE_TIME_MESSAGE = "An ISO 8601 date-time with a time zone, e.g. 2026-11-25T09:30:00Z."


def to_datetime(value: str) -> datetime:
    """The one date-time policy (core.timestamps): a day the month has, an offset within +-14:00, a year
    PostgreSQL and Python both store."""
    parsed = parse_timestamp(value)
    if parsed is None:
        raise refuse(DATE_TIME_MESSAGE)
    return parsed


DateTimeIn = Annotated[
    str,
    Field(
        max_length=40,
        pattern=DATE_TIME,
        json_schema_extra={"format": "date-time"},
        description="RFC 3339 with a time zone; year 1901 to 2199, offset within +-14:00.",
    ),
    says(DATE_TIME_MESSAGE, blank="Required."),
    AfterValidator(to_datetime),
]
DateTimeOut = datetime


# JSON PostgreSQL's JSONB stores: no NUL in text or keys, finite numbers, nested at most MAX_JSON_DEPTH.
# The recursive type describes it to the document; json_problem is the check (it also bounds the depth).
NoNulText = Annotated[str, Field(pattern=NO_NUL)]
JsonValue = TypeAliasType(
    "JsonValue",
    "Union[NoNulText, int, float, bool, None, list[JsonValue], dict[NoNulText, JsonValue]]",
)


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why PostgreSQL's JSONB would refuse a value (NUL characters, NaN/Infinity, deep nesting), or None."""
    if depth > MAX_JSON_DEPTH:
        return f"Nested more than {MAX_JSON_DEPTH} levels deep."
    if isinstance(value, str):
        return "Text cannot contain NUL characters." if "\x00" in value else None
    if isinstance(value, float) and not math.isfinite(value):
        return "Numbers must be finite."
    if isinstance(value, dict):
        for key, item in value.items():
            if problem := json_problem(key, depth + 1) or json_problem(item, depth + 1):
                return problem
    if isinstance(value, list):
        for item in value:
            if problem := json_problem(item, depth + 1):
                return problem
    return None


def storable_object(value: Any) -> dict:
    if not isinstance(value, dict):
        raise refuse("A JSON object.")
    if problem := json_problem(value):
        raise refuse(problem)
    return value


JsonObject = Annotated[
    dict,
    PlainValidator(storable_object, json_schema_input_type=dict[NoNulText, JsonValue]),
    Field(
        description=f"Any JSON object PostgreSQL stores: no NUL characters, nested at most "
        f"{MAX_JSON_DEPTH} levels."
    ),
]


class Contract(BaseModel):
    """Strict types, no unknown fields, patterns as full matches."""

    model_config = ConfigDict(strict=True, extra="forbid", regex_engine="rust-regex")


# --- webhook targets


def url_problem(url: Any) -> str | None:
    """What is wrong with a callback URL's form (scheme, host, port, credentials), or None."""
    if not isinstance(url, str) or not url:
        return "A callback URL is required."
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        return f"A URL of at most {MAX_URL} characters without spaces."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "An http:// or https:// URL with a host."
    if parts.username or parts.password:
        return "Credentials do not belong in the URL; give a secret instead."
    return None


_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_URL_CHAR = r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
CALLBACK_URL = (
    rf"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9\-._~]+(?::{_PORT})?(?:[/?#]{_URL_CHAR}*)?$"
)
def judged(value: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> str:
    """A callback URL: of the documented form, and nothing wrong with it in the eyes of the judge in the
    validation context (outbox.url_problem) or of url_problem; the judge's words explain a refusal."""
    judge = (info.context or {}).get("url_problem", url_problem)
    try:
        handler(value)
    except ValidationError:
        raise refuse(judge(value) or url_problem(value) or "An http:// or https:// URL with a host.") from None
    if problem := judge(value):
        raise refuse(problem)
    return value


CallbackUrl = Annotated[str, Field(max_length=MAX_URL, pattern=CALLBACK_URL), WrapValidator(judged)]


# Either a Standard Webhooks secret (whsec_ and base64) or any other text that does not start with whsec_.
SECRET = (
    r"^(?:whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"
    r"|(?:[^w\u0000]|w[^h\u0000]|wh[^s\u0000]|whs[^e\u0000]|whse[^c\u0000]|whsec[^_\u0000])[^\u0000]*)$"
)
Secret = Annotated[
    str,
    Field(
        min_length=MIN_SECRET,
        max_length=MAX_SECRET,
        pattern=SECRET,
        description="Signs this URL's deliveries instead of WEBHOOK_SECRET; never returned. A Standard "
        "Webhooks secret (whsec_ and base64) signs with its decoded bytes, any other text with its UTF-8 "
        "bytes.",
    ),
    says(f"A secret is a string of {MIN_SECRET} to {MAX_SECRET} characters."),
]


class WebhookTarget(Contract):
    url: CallbackUrl
    secret: Secret | None = None


def webhook_kind(value: Any) -> str | None:
    return "~url" if isinstance(value, str) else "~target" if isinstance(value, dict) else None


def webhook_item_shape(value: Any) -> Any:
    if not isinstance(value, (str, dict)):
        raise refuse("A URL string or an object with url and secret.")
    return value


def webhook_list(value: Any) -> list:
    if not isinstance(value, list):
        raise refuse("A list of callback URLs, or of objects with url and secret.")
    if len(value) > MAX_WEBHOOKS:
        raise refuse(f"At most {MAX_WEBHOOKS} callback URLs.")
    return value


WebhookItem = Annotated[
    Annotated[CallbackUrl, Tag("~url")] | Annotated[WebhookTarget, Tag("~target")],
    Discriminator(webhook_kind),
    BeforeValidator(webhook_item_shape),
]


def distinct_urls(items: list) -> list:
    seen: set[str] = set()
    for i, item in enumerate(items):
        url = item if isinstance(item, str) else item.url
        if url in seen:
            raise refuse("This URL is listed twice.", f"[{i}]")
        seen.add(url)
    return items


Webhooks = Annotated[
    list[WebhookItem],
    Field(
        max_length=MAX_WEBHOOKS,
        json_schema_extra={"uniqueItems": True},
        description="Callback URLs (each at most once), as strings or {url, secret}.",
    ),
    WrapValidator(lambda value, handler: handler(webhook_list(value))),
    AfterValidator(distinct_urls),
]
WEBHOOKS = TypeAdapter(Webhooks)


# --- assets


def asset_shape(value: Any) -> Any:
    if not isinstance(value, dict):
        raise refuse("An object with key, content_type and sha256 (label optional).")
    return value


class AssetIn(Contract):
    key: Annotated[
        str,
        Field(
            min_length=1,
            max_length=MAX_KEY,
            pattern=STORAGE_KEY,
            description="Storage key, relative: no '..' segment, no leading '/', no '\\' or control characters.",
        ),
        says(f"A relative storage key (no '..', no leading '/'), at most {MAX_KEY} characters."),
    ]
    label: Annotated[
        str | None,
        Field(max_length=MAX_LABEL, pattern=NO_NUL, description="For reviewers; the key's last segment if left out."),
        says(f"Text of at most {MAX_LABEL} characters."),
    ] = None
    content_type: Annotated[
        str, Field(pattern=CONTENT_TYPE, examples=["image/png"], description="A lowercase media type."), says("A media type such as image/png or application/pdf.")
    ]
    sha256: Annotated[
        str, Field(pattern=SHA256, description="64 lowercase hex digits."), says("The SHA-256 of the file: 64 lowercase hex digits.")
    ]

    def stored(self) -> dict[str, str]:
        """The form kept in ``orders.r2_assets[stage]``: the label defaults to the key's last segment."""
        return {
            "key": self.key,
            "label": self.label or self.key.rsplit("/", 1)[-1],
            "content_type": self.content_type,
            "sha256": self.sha256,
        }


def distinct_keys(items: list[AssetIn]) -> list[AssetIn]:
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.key in seen:
            raise refuse("This key is listed twice.", f"[{i}].key")
        seen.add(item.key)
    return items


def asset_list(value: Any, handler: Callable[[Any], Any]) -> Any:
    if not isinstance(value, list) or not value:
        raise refuse("At least one asset.")
    if len(value) > MAX_ASSETS:
        raise refuse(f"At most {MAX_ASSETS}.")
    return handler(value)


Assets = Annotated[
    list[Annotated[AssetIn, BeforeValidator(asset_shape)]],
    Field(
        min_length=1,
        max_length=MAX_ASSETS,
        json_schema_extra={"uniqueItems": True},
        description="The stage's files; each key at most once.",
    ),
    WrapValidator(asset_list),
    AfterValidator(distinct_keys),
]


STAGE_ASSETS = TypeAdapter(Assets)


class StageSubmission(Contract):
    """PUT /orders/{order_id}/stages/{stage}."""

    assets: Assets


# --- orders


RequiredText100 = Text(100, "Text of at most 100 characters.", required=True)
OptionalText100 = Text(100, "Text of at most 100 characters.")
OptionalText255 = Text(255, "Text of at most 255 characters.")
OptionalText500 = Text(500, "Text of at most 500 characters.")


def email_address(value: str) -> str:
    """An address whose syntax is valid (email-validator); whether its domain takes mail is not ours to say,
    so reserved names such as shop.test pass (test_environment), as JSON Schema's ``format: email`` lets them."""
    try:
        validate_email(value, check_deliverability=False, globally_deliverable=False, test_environment=True)
    except EmailNotValidError:
        raise refuse("A valid e-mail address.") from None
    return value


class OrderInput(Contract):
    """PUT /orders/{order_id}: an order's fields (r2_assets excepted: stages carry their assets)."""

    platform: Annotated[Literal[PLATFORMS], says(f"One of {', '.join(PLATFORMS)}.")]  # type: ignore[valid-type]
    amazon_order_id: OptionalText255 | None = Field(
        None, description="Required when platform is amazon."
    )
    project: RequiredText100
    customer_first_name: RequiredText100
    customer_last_name: RequiredText100
    customer_email: Annotated[
        str, Field(max_length=254), AfterValidator(email_address), says("A valid e-mail address.", blank="Required.")
    ] = Field(json_schema_extra={"format": "email"})
    order_date: DateTimeIn
    status: Annotated[
        str | None,
        Field(pattern=ORDER_STATUS, description="The order's own status; `received` when left out."),
        says("Lowercase letters, digits and '_', at most 50, e.g. received or in_review."),
    ] = None
    ai_generation_started_at: DateTimeIn | None = None
    character_hash: OptionalText100 | None = None
    character_path: OptionalText500 | None = None
    template_path: OptionalText500 | None = None
    character_specs: JsonObject | None = None
    book_specs: JsonObject | None = None
    order_details: JsonObject | None = None
    asset_prefix: OptionalText500 | None = None
    webhooks: Webhooks | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"platform": {"const": "amazon"}}, "required": ["platform"]},
            "then": {
                "required": ["amazon_order_id"],
                "properties": {"amazon_order_id": {"type": "string", "pattern": NOT_BLANK}},
            },
        }
    )

    def columns(self) -> dict[str, Any]:
        """The order's column values: blank text is left out (NULL), status defaults to ``received``."""
        values = {name: getattr(self, name) for name in type(self).model_fields if name != "webhooks"}
        for name, value in values.items():
            if value == "":
                values[name] = None
        values["status"] = self.status or "received"
        values["webhooks"] = (
            None
            if self.webhooks is None
            else [
                {"url": w} if isinstance(w, str) else w.model_dump(exclude_none=True) for w in self.webhooks
            ]
        )
        return values


def amazon_needs_its_id(order: OrderInput) -> OrderInput:
    if order.platform == "amazon" and not order.amazon_order_id:
        raise refuse("Required for Amazon orders.", "amazon_order_id")
    return order


ORDER_INPUT = TypeAdapter(Annotated[OrderInput, AfterValidator(amazon_needs_its_id)])
ORDER_ID_PARAM = TypeAdapter(
    Annotated[str, Field(min_length=1, max_length=255, pattern=ORDER_ID), says("1-255 letters, digits, '#', '.', '_', ':' or '-'.")],
    config=ConfigDict(strict=True, regex_engine="rust-regex"),
)


# --- decisions and the waiting list


class ApproveInput(Contract):
    """POST /orders/{order_id}/stages/{stage}/approve (the body may be left out)."""

    notes: Annotated[
        str | None, Field(max_length=MAX_NOTES, pattern=NO_NUL), says(f"Text of at most {MAX_NOTES} characters.")
    ] = None


class StageListQuery(Contract):
    """GET /stages: its query parameters."""

    status: Annotated[
        str,
        Field(
            pattern=STATUS_LIST,
            description="Comma-separated statuses; default pending,in_review.",
        ),
        says(f"One or more of {', '.join(STATUSES)}, separated by commas."),
    ] = "pending,in_review"
    stage: Annotated[Literal[STAGE_NAMES] | None, says(f"One of {', '.join(STAGE_NAMES)}.")] = None  # type: ignore[valid-type]
    limit: Annotated[
        int, Field(ge=1, le=MAX_LIMIT, strict=False), says(f"A whole number from 1 to {MAX_LIMIT}.")
    ] = DEFAULT_LIMIT
    cursor: Annotated[
        str | None,
        Field(
            # Documented, not validated here: any other cursor is refused by the paging codec, as 400.
            json_schema_extra={"pattern": r"^[A-Za-z0-9_.\-]*$"},
            description="next_cursor of the previous page, exactly as given: an opaque, signed position. A "
            "cursor this API did not hand out is refused with 400 (code `bad_cursor`).",
        ),
        says("Use next_cursor as given."),
    ] = None

    def statuses(self) -> list[str]:
        return self.status.split(",")


# --- answers


class View(BaseModel):
    """An answer: built from our own values, so not strict, but still nothing undeclared."""

    model_config = ConfigDict(extra="forbid")


class AssetView(View):
    key: str
    label: str | None = None
    content_type: str | None = None
    sha256: str | None = None


class CheckResultView(View):
    check: str = Field(description="A stable check id, e.g. pdf.page_count.")
    outcome: Literal["pass", "warn", "fail", "error"] = Field(description="error: the check itself could not run.")
    message: str
    asset: str | None = Field(description="The asset key it concerns, where it applies.")
    page: int | None = Field(description="The PDF page it concerns, where it applies.")


class ChecksView(View):
    """The machine checks of the stage's assets as they are now."""

    state: Literal["pending", "done"]
    results: list[CheckResultView]


class StageView(View):
    order_id: str
    stage: StageName
    status: Literal["approved", "pending"] = Field(description="The approval store's answer (getStageStatus).")
    review_status: Literal[STATUSES] | None = Field(  # type: ignore[valid-type]
        description="The review state; null when the stage was never submitted."
    )
    reviewer: str | None
    notes: str | None
    reasons: list[str] = Field(description="Reason codes of the latest decision.")
    reviewed_at: DateTimeOut | None
    submitted_at: DateTimeOut | None
    updated_at: DateTimeOut | None
    assets: list[AssetView]
    checks: ChecksView | None = Field(
        None, description="The machine checks (on single-stage answers; null in lists: ask the stage).")


class ListedStageView(StageView):
    platform: str | None
    project: str | None


class WebhookView(View):
    url: str
    has_secret: bool


class OrderView(View):
    order_id: str
    platform: str
    amazon_order_id: str | None
    project: str
    customer_first_name: str
    customer_last_name: str
    customer_email: str = Field(description="As stored; checked as an e-mail address on the way in.")
    order_date: DateTimeOut
    status: str
    ai_generation_started_at: DateTimeOut | None
    character_hash: str | None
    character_path: str | None
    template_path: str | None
    character_specs: dict | None
    book_specs: dict | None
    order_details: dict | None
    asset_prefix: str | None
    webhooks: list[WebhookView] = Field(description="Secrets are write-only: has_secret says one is set.")
    created_at: DateTimeOut | None
    updated_at: DateTimeOut | None
    stages: list[StageView]


class OrderResult(View):
    result: Literal["created", "updated", "unchanged"]
    changed: list[str]
    order: OrderView


class StageResult(View):
    result: Literal["created", "resubmitted", "unchanged", "approved", "already_approved"]
    stage: StageView


class StagePage(View):
    items: list[ListedStageView]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null on the last.")


class ErrorDetail(View):
    code: str = Field(description="Stable, machine-readable.")
    message: str = Field(description="For people.")
    fields: dict[str, str] | None = Field(
        None, description="Per field (or field path such as assets[0].sha256): what is wrong."
    )
    details: dict[str, Any] | None = Field(None, description="Facts about a conflict, e.g. waiting_for, status.")


class Error(View):
    error: ErrorDetail


class WebhookEvent(View):
    """The body POSTed to an order's callback URLs on each decision or voided approval."""

    event: Literal[EVENTS]  # type: ignore[valid-type]
    delivery_id: str = Field(
        json_schema_extra={"format": "uuid"}, description="Equals the webhook-id and Idempotency-Key headers."
    )
    order_id: str
    stage: StageName
    occurred_at: str = Field(json_schema_extra={"format": "date-time"})
    status: Literal["approved", "pending"]
    review_status: Literal[STATUSES] | None  # type: ignore[valid-type]
    reviewer: str | None
    notes: str | None
    reasons: list
    reviewed_at: str | None = Field(json_schema_extra={"format": "date-time"})
    details: dict = Field(description="status_before; for approval_voided the reason and the previous decision; "
                          "for stage_voided the cause and the earlier stage that changed.")
    checks: ChecksView | None = Field(None, description="The stage's machine checks when the event was written.")

    model_config = ConfigDict(extra="allow")


# --- refusals as the API reports them


def path_of(loc: tuple) -> str:
    """``('assets', 0, 'key')`` as ``assets[0].key``; union tags (``~url``) are not part of the path."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.startswith("~"):
            continue
        elif part:
            path += f".{part}" if path else part
    return path


UNKNOWN_IN_ITEM = {
    "assets": "Unknown fields: {names}.",
    "webhooks": "Unknown keys: {names}; use url and secret.",
}


def field_errors(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """One message per field path, in the words the API has always used."""
    errors: dict[str, str] = {}
    unknown_in_item: dict[str, list[str]] = {}
    for error in exc.errors():
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            parent, name = path_of((prefix, *loc[:-1]) if prefix else loc[:-1]), str(loc[-1])
            top = parent.split("[", 1)[0]
            if "[" in parent and top in UNKNOWN_IN_ITEM:
                unknown_in_item.setdefault(parent, []).append(name)
            else:
                errors[(f"{parent}.{name}" if parent else name)[:100]] = "Unknown field."
            continue
        path = path_of((prefix, *loc) if prefix else loc)
        extra = (error.get("ctx") or {}).get("path")
        if extra:
            path = path + extra if extra.startswith("[") or not path else f"{path}.{extra}"
        if kind == "missing":
            errors.setdefault(path, "Required.")
        else:
            errors.setdefault(path or prefix or "body", error["msg"])
    for parent, names in unknown_in_item.items():
        errors[parent] = UNKNOWN_IN_ITEM[parent.split("[", 1)[0]].format(names=", ".join(sorted(names)))
    return errors


def checked(adapter: TypeAdapter | type[BaseModel], value: Any, message: str, *, prefix: str = "",
            context: dict | None = None, what: str = "The body must be a JSON object.") -> Any:
    """``value`` validated by a model or adapter; raises Invalid with one message per field path."""
    if isinstance(adapter, type) and not isinstance(value, dict):
        raise Invalid(what, {prefix or "body": "A JSON object."})
    try:
        if isinstance(adapter, TypeAdapter):
            return adapter.validate_python(value, context=context)
        return adapter.model_validate(value, context=context)
    except ValidationError as exc:
        raise Invalid(message, field_errors(exc, prefix)) from None
