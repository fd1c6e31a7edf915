"""Chatroom: live group chat for facilitated sessions.

``create_app`` wires configuration, extensions, the broker, presence and the
blueprints; it defines no routes of its own. Where things live is described in
``docs/architecture.md``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask

from config import DEV_SECRET_KEY, Config, config_for

from . import db_pool, logs
from .extensions import RowId, csrf, db, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("chatroom")


def create_app(config_class: type[Config] | None = None) -> Flask:
    """Build a Chatroom app; ``config_class`` defaults to the one ``CHATROOM_ENV`` names."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    app.config.from_object(config_class or config_for(os.environ.get("CHATROOM_ENV")))
    app.jinja_env.trim_blocks = True  # small pages: no blank lines left behind by template tags
    app.jinja_env.lstrip_blocks = True
    logs.configure(app)
    _configure_database(app)
    _check_production(app)

    db.init_app(app)
    with app.app_context():
        db_pool.watch(db.engine)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    login_manager.init_app(app)

    app.url_map.converters["id"] = RowId  # before the blueprints: their rules use it
    logs.init_app(app)  # first: every later hook and error already has the request's id
    # Imported here, not at the top: the blueprints' modules read the extensions bound above.
    from . import (
        admin,
        api,
        assets,
        auth,
        broker,
        chat,
        cli,
        compression,
        errors,
        headers,
        host,  # noqa: F401 - its routes attach to the chat and rooms blueprints
        htmx,
        limits,
        links,
        message_page,  # noqa: F401 - its routes attach to the chat blueprint
        metrics,
        pages,
        participation,
        presence,
        rooms,
        stream,
    )

    presence.init_app(app, broker.init_app(app))
    htmx.init_app(app)
    metrics.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    links.init_app(app)
    # host.py, message_page.py and assets.py attach their routes to the chat, rooms and views blueprints:
    # imported above.
    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(rooms.bp)
    app.register_blueprint(chat.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(participation.bp)
    participation.init_app(app)
    limits.init_app(app)  # after the blueprints: it wraps their views
    api.init_app(app)  # after the limiter: the API's per-token limits use it
    headers.init_app(app)
    compression.init_app(app)
    assets.init_app(app)
    return app


def _check_production(app: Flask) -> None:
    """Refuse to start a production app that a client could turn against its users.

    :raise RuntimeError: the development ``SECRET_KEY``; neither ``PUBLIC_URL`` nor ``ALLOWED_HOSTS``
        (absolute links would follow the request's forgeable ``Host`` header); a ``PUBLIC_URL`` that is
        not ``http(s)://host[:port]``.
    """
    public_url = app.config.get("PUBLIC_URL")
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/") or parts.query:
            raise RuntimeError(f"PUBLIC_URL must look like https://chat.example.org, not {public_url!r}")
    if app.config["ENV_NAME"] != "production":
        return
    if app.config["SECRET_KEY"] in ("", DEV_SECRET_KEY):
        raise RuntimeError("SECRET_KEY is not set: refusing to start in production with the development key")
    if not public_url and not app.config.get("TRUSTED_HOSTS"):
        raise RuntimeError(
            "PUBLIC_URL is not set (nor ALLOWED_HOSTS): refusing to start in production, because links in mail "
            "and on the owner's page would follow the request's Host header, which a client can forge"
        )


def _configure_database(app: Flask) -> None:
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
        path = Path(app.instance_path) / "chatroom.sqlite3"
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{path}"
        # SQLite has no server-side pool; a short busy wait lets concurrent writers queue up.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 15}}
        log.info("DATABASE_URL is not set: using the embedded SQLite database at %s", path)
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {"connect_args": {"timeout": 15}}
