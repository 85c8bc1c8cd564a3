"""Flask extensions, created unbound so models and services can import them without a cycle."""
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, inspect
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


READ_ENGINE = "lhb_read_engine"  # session.info key: the replica connection a read-only request reads on
# Who is asking is read from the primary even on a replica-routed page, so a sign-out on every device or
# a revoked API token takes effect at once rather than within REPLICA_MAX_LAG_MS.
PRIMARY_ONLY_TABLES = frozenset({"users", "api_tokens"})


class RoutingSession(FlaskSession):
    """Flask-SQLAlchemy's session, reading from the replica a request chose (``info[READ_ENGINE]``).

    Writes never go there: a flush, an INSERT/UPDATE/DELETE and the tables in PRIMARY_ONLY_TABLES use the
    primary. With no replica chosen (always, when none is configured) this is Flask-SQLAlchemy's get_bind.
    """

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        replica = self.info.get(READ_ENGINE)
        if replica is not None and bind is None and not self._flushing and not _writes_or_who(mapper, clause):
            return replica
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


def _writes_or_who(mapper, clause) -> bool:
    if clause is not None and getattr(clause, "is_dml", False):
        return True
    if mapper is None:
        return False
    table = getattr(inspect(mapper).local_table, "name", None)
    return table in PRIMARY_ONLY_TABLES


db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Keyed by the client address (ProxyFix has already applied TRUST_PROXY_HOPS); routes add their own keys.
limiter = Limiter(key_func=get_remote_address)
