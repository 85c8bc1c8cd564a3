"""The review of an order's stages: the state machine that owns every change, and what reviewers read."""
from lhb_review.review.claims import claim, release, renew, takeover
from lhb_review.review.claims import sweep_lapsed as expire_lapsed
from lhb_review.review.decisions import approve, reject, reopen
from lhb_review.review.submissions import submit
from lhb_review.review.undoing import undo
from lhb_review.review.uploads import replace_asset
from lhb_review.models.core import stage_assets as _assets

VOID_ACTIONS = ("approval_voided", "stage_voided")


def stage_assets(order, stage: str) -> list[dict]:
    return _assets((order.r2_assets or {}).get(stage))
