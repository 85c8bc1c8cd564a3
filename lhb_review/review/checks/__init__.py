"""Machine checks of each stage's files against its order: the engine, the job flow, the override rule."""
from lhb_review.review.checks.jobs import enqueue_checks, failing_checks, rerun, stage_checks
from lhb_review.review.checks.override import ChecksFailing, require_override

__all__ = ["ChecksFailing", "enqueue_checks", "failing_checks", "require_override", "rerun", "stage_checks"]
