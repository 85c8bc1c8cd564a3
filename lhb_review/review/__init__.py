"""The review of an order's stages: the state machine that owns every change (review.machine), and the reads
reviewers need. Views, the API, the CLI and the importer change review state only through these entry points."""
from lhb_review.review.machine import (ALLOWED, MAX_NOTES, Action, Decided, Who, approve, claim, expire_lapsed,
                                       import_approval, perform, reject, release, renew, reopen, replace_asset,
                                       submit, takeover, undo)

VOID_ACTIONS = ("approval_voided", "stage_voided")  # audit actions that withdrew a stage's approval

__all__ = ["ALLOWED", "MAX_NOTES", "VOID_ACTIONS", "Action", "Decided", "Who", "approve", "claim", "expire_lapsed",
           "import_approval", "perform", "reject", "release", "renew", "reopen", "replace_asset", "submit",
           "takeover", "undo"]
