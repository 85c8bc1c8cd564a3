"""audit_logs.created_at is the database's clock: a row trigger sets it on INSERT, whatever the writer sends.

The trigger binds every role that cannot switch it off. Superusers and the table's owner are left to
write their own times (demo seeding, bulk benchmark loads, restores): they could disable the trigger
anyway, so exempting them gives nothing away. The application role is neither (see SECURITY.md).

Revision ID: 0013_audit_created_at
Revises: 0010_stage_order
Create Date: 2026-12-01
"""
from alembic import op

revision = "0013_audit_created_at"
down_revision = "0010_stage_order"
branch_labels = None
depends_on = None


def upgrade():
    op.execute(
        """
        CREATE FUNCTION audit_logs_database_time() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = current_user AND rolsuper)
               AND NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'USAGE')
            THEN
                NEW.created_at := now();
            END IF;
            RETURN NEW;
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_logs_created_at BEFORE INSERT ON audit_logs "
        "FOR EACH ROW EXECUTE FUNCTION audit_logs_database_time()"
    )


def downgrade():
    op.execute("DROP TRIGGER IF EXISTS audit_logs_created_at ON audit_logs")
    op.execute("DROP FUNCTION IF EXISTS audit_logs_database_time()")
