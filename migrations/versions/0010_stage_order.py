"""The stage order, held by the database: no commit may leave a later stage of an order approved while an
earlier one is not, and approvals written straight into the approvals table (the pipeline's own
approveStage) show truthfully in review_stages.

- ``review_stages_stage_order``: a constraint trigger, deferred to commit, on every insert, update and delete
  of review_stages. It raises check_violation (23514) naming the order and the stages.
- ``approvals_follow_review``: a BEFORE trigger on approvals. An approval of a stage whose earlier stages
  are approved approves the stage in review_stages too (reviewer and time from the approvals row), ends its
  claim and is audited once (``stage_approved``, ``details.source`` = "approvals table"). An approval that
  would skip an earlier stage is stored as ``pending`` instead, so the pipeline's INSERT succeeds and its
  ``RETURNING *`` and getStageStatus both say what holds; audited ``approval_refused``. Rows lhb-review
  writes itself (the stage already approved by the same reviewer) pass through untouched.

The upgrade first looks for orders that already break the rule; it lists them and stops rather than
rewrite anyone's decisions.

Revision ID: 0010_stage_order
Revises: 0007_user_session_token
Create Date: 2026-12-01
"""
from alembic import op
from sqlalchemy import text

revision = "0010_stage_order"
down_revision = "0007_user_session_token"
branch_labels = None
depends_on = None

# Position of each stage in the pipeline; stage names it does not know take no part in the rule.
POSITION = """
CREATE FUNCTION review_stage_position(stage text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE stage WHEN 'preBria' THEN 1 WHEN 'postBria' THEN 2 WHEN 'postPdf' THEN 3 END
$$
"""

# The later stages of orders that are approved while an earlier stage is missing or not approved.
VIOLATIONS = """
CREATE FUNCTION review_stage_order_violations(only_order text DEFAULT NULL)
RETURNS TABLE (order_id varchar, stage_name varchar, waiting_for text)
LANGUAGE sql STABLE AS $$
    SELECT later.order_id, later.stage_name,
           (SELECT string_agg(s.name, ', ' ORDER BY s.pos)
              FROM (VALUES ('preBria', 1), ('postBria', 2), ('postPdf', 3)) AS s(name, pos)
             WHERE s.pos < review_stage_position(later.stage_name)
               AND NOT EXISTS (SELECT 1 FROM review_stages e
                                WHERE e.order_id = later.order_id AND e.stage_name = s.name
                                  AND e.status = 'approved'))
      FROM review_stages later
     WHERE later.status = 'approved'
       AND review_stage_position(later.stage_name) > 1
       AND (only_order IS NULL OR later.order_id = only_order)
       AND (SELECT count(*) FROM review_stages e
             WHERE e.order_id = later.order_id AND e.status = 'approved'
               AND review_stage_position(e.stage_name) < review_stage_position(later.stage_name))
           < review_stage_position(later.stage_name) - 1
$$
"""

CHECK = """
CREATE FUNCTION review_stages_check_stage_order() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bad record;
BEGIN
    SELECT * INTO bad FROM review_stage_order_violations(
        CASE WHEN TG_OP = 'DELETE' THEN OLD.order_id ELSE NEW.order_id END) LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'order %: % is approved while % is not', bad.order_id, bad.stage_name, bad.waiting_for
            USING ERRCODE = 'check_violation',
                  HINT = 'Stages are approved in pipeline order (preBria, postBria, postPdf); '
                         'approve the earlier stage first, or return the later one to pending.';
    END IF;
    RETURN NULL;
END;
$$
"""

FOLLOW = """
CREATE FUNCTION approvals_follow_review() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    st review_stages%ROWTYPE;
    submitted boolean;
    waiting text;
BEGIN
    IF NEW.status IS DISTINCT FROM 'approved' THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.status = 'approved'
       AND OLD.reviewer_email IS NOT DISTINCT FROM NEW.reviewer_email
       AND OLD.approved_at IS NOT DISTINCT FROM NEW.approved_at THEN
        RETURN NEW;
    END IF;
    SELECT * INTO st FROM review_stages
     WHERE order_id = NEW.order_id AND stage_name = NEW.stage
       FOR UPDATE;
    submitted := FOUND;
    IF submitted AND st.status = 'approved' AND st.reviewer_email IS NOT DISTINCT FROM NEW.reviewer_email THEN
        RETURN NEW;  -- lhb-review's own decision: the stage is approved already, in the same transaction
    END IF;
    IF NOT submitted AND NOT EXISTS (SELECT 1 FROM review_stages WHERE order_id = NEW.order_id) THEN
        RETURN NEW;  -- an order lhb-review has no stages of (yet): the approval store stands alone
    END IF;
    SELECT string_agg(s.name, ', ' ORDER BY s.pos) INTO waiting
      FROM (VALUES ('preBria', 1), ('postBria', 2), ('postPdf', 3)) AS s(name, pos)
     WHERE s.pos < review_stage_position(NEW.stage)
       AND NOT EXISTS (SELECT 1 FROM review_stages e
                        WHERE e.order_id = NEW.order_id AND e.stage_name = s.name AND e.status = 'approved');
    IF waiting IS NOT NULL OR NOT submitted THEN
        INSERT INTO audit_logs (order_id, action, stage, reviewer_email, details)
        VALUES (NEW.order_id, 'approval_refused', NEW.stage, NEW.reviewer_email, jsonb_build_object(
            'source', 'approvals table', 'waiting_for', waiting, 'stage_submitted', submitted,
            'approved_at', NEW.approved_at, 'status_before', CASE WHEN submitted THEN st.status END));
        NEW.status := 'pending';
        NEW.approved_at := NULL;
        NEW.reviewer_notes := CASE WHEN waiting IS NOT NULL
            THEN 'Not approved: ' || waiting || ' is not approved yet.'
            ELSE 'Not approved: this stage has not been submitted for review.' END;
        RETURN NEW;
    END IF;
    UPDATE review_stages
       SET status = 'approved', reviewed_at = NEW.approved_at, reviewer_email = NEW.reviewer_email,
           reviewer_notes = NEW.reviewer_notes
     WHERE id = st.id;
    DELETE FROM stage_claims WHERE order_id = NEW.order_id AND stage = NEW.stage;
    -- What an earlier approval recorded says nothing about what this one saw.
    DELETE FROM approval_fingerprints WHERE order_id = NEW.order_id AND stage = NEW.stage;
    INSERT INTO audit_logs (order_id, action, stage, reviewer_email, details)
    VALUES (NEW.order_id, 'stage_approved', NEW.stage, NEW.reviewer_email, jsonb_build_object(
        'source', 'approvals table', 'status_before', st.status, 'status_after', 'approved',
        'approved_at', NEW.approved_at, 'notes', NEW.reviewer_notes));
    RETURN NEW;
END;
$$
"""


def upgrade():
    op.execute(POSITION)
    op.execute(VIOLATIONS)
    bind = op.get_bind()
    found = bind.execute(text("SELECT * FROM review_stage_order_violations() ORDER BY 1, 2 LIMIT 50")).all()
    if found:
        listed = "\n".join(f"  order {o}: {s} is approved while {w} is not" for o, s, w in found)
        raise RuntimeError(
            "These orders break the stage order (a later stage approved before an earlier one). The migration "
            "changes no decisions: reopen the later stages or approve the earlier ones, then migrate again.\n"
            + listed
        )
    op.execute(CHECK)
    op.execute(
        "CREATE CONSTRAINT TRIGGER review_stages_stage_order AFTER INSERT OR UPDATE OR DELETE ON review_stages "
        "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION review_stages_check_stage_order()"
    )
    op.execute(FOLLOW)
    op.execute(
        "CREATE TRIGGER approvals_follow_review BEFORE INSERT OR UPDATE ON approvals "
        "FOR EACH ROW EXECUTE FUNCTION approvals_follow_review()"
    )


def downgrade():
    op.execute("DROP TRIGGER approvals_follow_review ON approvals")
    op.execute("DROP FUNCTION approvals_follow_review()")
    op.execute("DROP TRIGGER review_stages_stage_order ON review_stages")
    op.execute("DROP FUNCTION review_stages_check_stage_order()")
    op.execute("DROP FUNCTION review_stage_order_violations(text)")
    op.execute("DROP FUNCTION review_stage_position(text)")
