"""The rule that approving a stage over failing machine checks takes notes saying why."""
from __future__ import annotations

from lhb_review.core.errors import Invalid
from typing import Any

from lhb_review.review.checks.jobs import DONE, failing_checks

NOT_READ = object()


class ChecksFailing(Invalid):
    code = "checks_failing"


def require_override(order_id: str, stage: str, notes: str | None, *, run: Any = NOT_READ) -> list[str]:
    """The failing check ids an approval with ``notes`` overrides ([] when none fail); ``run``: the stage's
    current check run when the caller has read it already (None: it has none).

    Raises ChecksFailing (422, ``checks_failing``) when some fail and ``notes`` is empty; the caller
    records the returned ids in the approval's audit row as ``overridden_checks``.
    """
    if run is NOT_READ:
        failing = failing_checks(order_id, stage)
    else:
        failing = list(run.failing or []) if run is not None and run.state == DONE else []
    if failing and not (notes or "").strip():
        raise ChecksFailing(
            f"Machine checks fail on this stage ({', '.join(failing)}): say in the notes why it is approved anyway.",
            {"notes": "Notes are required to approve over failing checks."},
            failing=failing,
        )
    return failing
