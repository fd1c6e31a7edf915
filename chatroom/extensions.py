"""Extension singletons, bound to an app in ``create_app``."""

from __future__ import annotations

import sqlite3

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase
from werkzeug.routing import IntegerConverter

from .csrf_masking import MaskedCSRFProtect

# Named constraints, so migrations can alter them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class RowId(IntegerConverter):
    """``<id:name>``: a positive integer that fits the database's INTEGER (larger ones are a plain 404)."""

    def __init__(self, map: object, *args: object, **kwargs: object) -> None:
        super().__init__(map, min=1, max=2**31 - 1)  # type: ignore[arg-type]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


# Objects keep their values after commit: services render what they just wrote, and
# reloading every attribute after each commit cost a round trip per object.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection: object, connection_record: object) -> None:
    # SQLite ignores ON DELETE CASCADE unless asked, per connection.
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


migrate = Migrate()
login_manager = LoginManager()
csrf = MaskedCSRFProtect()  # tokens masked per response: chatroom/csrf_masking.py
