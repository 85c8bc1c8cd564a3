"""audit_logs becomes append-only: UPDATE, DELETE and TRUNCATE are refused by a trigger.

The trigger is an ordinary (ENABLE ORIGIN) one: the application role cannot disable it because it does not
own the table, and cannot skip it because setting session_replication_role needs a superuser. A superuser
maintaining the database deliberately (and the test suite's cleanup) can, under
``SET session_replication_role = replica``.

Revision ID: 0007_audit_append_only
Revises: 0008_performance_indexes
Create Date: 2026-11-25
"""
from alembic import op

revision = "0007_audit_append_only"
down_revision = "0008_performance_indexes"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE FUNCTION audit_logs_refuse_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_logs is append-only: % is not allowed', TG_OP
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'Audit rows are written once and kept; add a new row instead.';
        END;
        $$
        """
    )
    # A statement trigger refuses even an UPDATE or DELETE that matches no row, and costs nothing per row.
    op.execute(
        "CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_logs "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_logs_refuse_change()"
    )


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS audit_logs_append_only ON audit_logs")
    op.execute("DROP FUNCTION IF EXISTS audit_logs_refuse_change()")
