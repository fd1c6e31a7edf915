"""Configuration from the environment."""

from __future__ import annotations

import pytest

from chatroom import create_app
from config import Config, database_url


def test_postgres_scheme_from_paas_is_accepted():
    assert database_url("postgres://u:p@h:5432/d") == "postgresql+psycopg2://u:p@h:5432/d"
    assert database_url("postgresql://h/d") == "postgresql+psycopg2://h/d"
    assert database_url("postgresql+psycopg2://h/d") == "postgresql+psycopg2://h/d"
    assert database_url("") is None


def test_production_refuses_the_development_secret(tmp_path):
    class Prod(Config):
        SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'x.db'}"
        SECRET_KEY = "dev-only-not-secret"

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(Prod)


def test_embedded_default_says_so_in_the_log(tmp_path, caplog, monkeypatch):
    class Embedded(Config):
        ENV_NAME = "development"
        SQLALCHEMY_DATABASE_URI = None
        REDIS_URL = None

    caplog.set_level("INFO")
    app = create_app(Embedded)
    assert app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert "DATABASE_URL is not set" in caplog.text
    assert "REDIS_URL is not set" in caplog.text
