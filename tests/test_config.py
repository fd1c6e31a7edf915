"""Configuration from the environment."""

from __future__ import annotations

import pytest

from chatroom import create_app
from config import Config, database_url, forwarded_allow_ips, host_list
from support.constants import PASSWORD

pytestmark = pytest.mark.once  # configuration: the same on either backend (tests/run.sh)


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


def _production(tmp_path, **settings):
    attrs = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}", "SECRET_KEY": "s" * 40, **settings}
    return type("Prod", (Config,), attrs)


def test_production_refuses_to_start_without_public_url_or_allowed_hosts(tmp_path):
    """Links in mail and on the owner's page must not follow the request's Host header (issue 11)."""
    with pytest.raises(RuntimeError, match="PUBLIC_URL"):
        create_app(_production(tmp_path))
    for bad in ("chat.example.org", "ftp://chat.example.org", "https://chat.example.org/app", "https://"):
        with pytest.raises(RuntimeError, match="PUBLIC_URL must look like"):
            create_app(_production(tmp_path, PUBLIC_URL=bad))
    for good in ({"PUBLIC_URL": "https://chat.example.org/"}, {"TRUSTED_HOSTS": ["chat.example.org"]}):
        app = create_app(_production(tmp_path, **good))
        app.extensions["chatroom.broker"].close()
        app.extensions["chatroom.presence"].close()


def test_allowed_hosts_come_from_a_comma_separated_list():
    assert host_list(None) is None and host_list(" , ") is None
    assert host_list("chat.example.org, .example.net") == ["chat.example.org", ".example.net"]


def test_every_absolute_link_is_built_on_public_url_whatever_the_host_header(app, make_facilitator, make_room):
    facilitator = make_facilitator()
    room = make_room(owner=facilitator)
    app.config.update(PUBLIC_URL="https://chat.example.org", WTF_CSRF_ENABLED=False)
    client = app.test_client()
    forged = "http://evil.example"  # every request of this browser says Host: evil.example
    assert (
        client.post("/login", data={"email": facilitator.email, "password": PASSWORD}, base_url=forged).status_code
        == 303
    )
    console = client.get(f"/rooms/{room.code}", base_url=forged).get_data(as_text=True)
    assert f'href="https://chat.example.org/r/{room.code}"' in console
    qr = client.get(f"/rooms/{room.code}/qr.svg", base_url=forged).get_data(as_text=True)
    assert f"https://chat.example.org/r/{room.code}" in qr
    assert "evil.example" not in console + qr


def test_with_allowed_hosts_another_host_is_refused_quietly(app, caplog):
    app.config["TRUSTED_HOSTS"] = ["chat.example.org"]
    client = app.test_client()
    assert client.get("/login", headers={"Host": "chat.example.org"}).status_code == 200
    caplog.set_level("INFO")
    response = client.post("/password/forgot", data={"email": "a@example.org"}, headers={"Host": "evil.example"})
    assert response.status_code == 400
    assert not [r for r in caplog.records if r.levelno >= 40]


@pytest.mark.parametrize("hops", [0, 1, 2])
def test_gunicorn_trusts_forwarded_headers_from_nobody_the_app_does_not(hops):
    """Issue 11: gunicorn trusted X-Forwarded-Proto from 127.0.0.1 whatever TRUSTED_PROXY_HOPS said. The value
    config.py gives gunicorn.conf.py trusts no peer: only the app's ProxyFix reads those headers, for exactly
    TRUSTED_PROXY_HOPS proxies."""
    from gunicorn.config import Config as GunicornConfig
    from gunicorn.http.message import _ip_in_allow_list

    cfg = GunicornConfig()
    cfg.set("forwarded_allow_ips", forwarded_allow_ips(hops))
    for peer in ("127.0.0.1", "::1", "10.0.0.1", "203.0.113.9"):
        assert not _ip_in_allow_list(peer, cfg.forwarded_allow_ips, cfg.forwarded_allow_networks())
    assert forwarded_allow_ips(Config.TRUSTED_PROXY_HOPS) == Config.FORWARDED_ALLOW_IPS
