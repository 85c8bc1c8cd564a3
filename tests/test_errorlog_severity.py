"""How the error log grades what it records: a lock wait that ran out is a warning, a database failure critical."""
from __future__ import annotations

from sqlalchemy import exc as sa_exc

from lhb_review.ops.errorlog import severity_of


class DriverError(Exception):
    def __init__(self, pgcode):
        super().__init__(f"driver error {pgcode}")
        self.pgcode = pgcode


def database_error(pgcode):
    return sa_exc.OperationalError("SELECT 1 FOR UPDATE", {}, DriverError(pgcode))


def test_a_lock_timeout_refusal_is_a_warning_not_critical():
    assert severity_of(database_error("55P03")) == "warning"


def test_other_database_failures_stay_critical_and_bugs_are_errors():
    assert severity_of(database_error("53100")) == "critical"
    assert severity_of(database_error(None)) == "critical"
    assert severity_of(RuntimeError("a bug")) == "error"
