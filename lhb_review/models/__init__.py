"""Typed models. core: the customer's tables and users; each later area adds a module of its own here."""
from lhb_review.models.api import ApiToken, WebhookAttempt, WebhookDelivery
from lhb_review.models.core import Approval, AuditLog, ErrorLog, Order, ReviewStage, User

__all__ = ["Approval", "AuditLog", "ErrorLog", "Order", "ReviewStage", "User"]
__all__ += ["ApiToken", "WebhookAttempt", "WebhookDelivery"]

from lhb_review.models.review import ApprovalFingerprint, StageClaim, StageDecision  # noqa: E402

__all__ += ["ApprovalFingerprint", "StageClaim", "StageDecision"]
from lhb_review.models import performance  # noqa: E402,F401  (indexes on the customer's tables for the queue, search, audit)

from lhb_review.models.checks import CheckRun  # noqa: E402

__all__ += ["CheckRun"]

from lhb_review.models.counts import StageCountDelta  # noqa: E402

__all__ += ["StageCountDelta"]
