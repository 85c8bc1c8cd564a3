"""Domain errors: a broken rule, raised before anything is written. Views map them to responses."""
from __future__ import annotations


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, **context):
        super().__init__(message)
        self.message = message
        self.context = context


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Invalid(DomainError):
    """Input that fails validation; ``fields`` maps a field name to its message."""

    status = 422
    code = "invalid"

    def __init__(self, message: str, fields: dict[str, str] | None = None, **context):
        super().__init__(message, **context)
        self.fields = fields or {}


class Conflict(DomainError):
    status = 409
    code = "conflict"


class AlreadyDecided(Conflict):
    code = "already_decided"


class StageOutOfOrder(Conflict):
    code = "stage_out_of_order"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"
