"""Configuration, read once from the environment.

Everything a deployment changes comes from environment variables, so the same
code runs on a laptop (nothing set: SQLite and the in-process broker) and on a
PaaS (``DATABASE_URL``, ``REDIS_URL``, ``SECRET_KEY``, ``PORT``).
"""

from __future__ import annotations

import os
from typing import ClassVar

DEV_SECRET_KEY = "dev-only-not-secret"  # noqa: S105 - refused in production, see create_app


def database_url(raw: str | None) -> str | None:
    """Normalise a ``DATABASE_URL`` to our driver.

    PaaS hosts hand out ``postgres://``; SQLAlchemy 2.1 reads a bare
    ``postgresql://`` as psycopg 3. We run psycopg2 (made cooperative under
    gevent by psycogreen), so both become ``postgresql+psycopg2://``.
    """
    if not raw:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg2://" + raw[len(prefix) :]
    return raw


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def host_list(raw: str | None) -> list[str] | None:
    """``ALLOWED_HOSTS`` as Flask's ``TRUSTED_HOSTS``: comma-separated names (``.example.org`` takes subdomains too).

    None (every host is served) when unset or empty.
    """
    hosts = [part.strip() for part in (raw or "").split(",") if part.strip()]
    return hosts or None


def forwarded_allow_ips(hops: int) -> str:
    """gunicorn's ``forwarded_allow_ips`` that agrees with ``TRUSTED_PROXY_HOPS``: always "" (trust no peer).

    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are read in one place only: Werkzeug's
    ``ProxyFix`` in the app, for exactly ``hops`` proxies (``chatroom/headers.py``). With
    ``hops`` 0 nothing may read them, so gunicorn must not either (its default trusts
    127.0.0.1, so anything on the machine, or a local proxy that passes the client's header
    through, could make a plain request look like HTTPS). With ``hops`` 1 or more,
    ``ProxyFix`` takes the right entry itself; gunicorn would only read the same headers
    less carefully (the whole value, from any allowed peer). ``gunicorn.conf.py`` uses this.
    """
    del hops  # the same answer for every count, on purpose: see above
    return ""


class Config:
    """Settings for a real deployment; every value can be overridden from the environment."""

    ENV_NAME = os.environ.get("CHATROOM_ENV", "production")
    SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
    SQLALCHEMY_DATABASE_URI = database_url(os.environ.get("DATABASE_URL"))  # None: SQLite in instance/
    REDIS_URL = os.environ.get("REDIS_URL") or None  # None: the in-process broker
    # Redis calls in request paths (presence, throttles, rate limits, publishing) give up after this long, and
    # after a failure are skipped for the cool-down (chatroom/breaker.py): a paused Redis must not hold requests.
    REDIS_TIMEOUT_SECONDS = float(os.environ.get("REDIS_TIMEOUT_SECONDS", "0.5"))
    REDIS_COOLDOWN_SECONDS = float(os.environ.get("REDIS_COOLDOWN_SECONDS", "5"))
    PORT = _int("PORT", 5000)

    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict[str, object]] = {
        # No pool_pre_ping: a checkout asks the socket instead of the server (chatroom/db_pool.py).
        "pool_size": _int("DB_POOL_SIZE", 5),
        "max_overflow": _int("DB_MAX_OVERFLOW", 10),
        # A request waits at most this long for a pooled connection when all of them are in use, then fails
        # (an error page) rather than queue forever behind a stuck database. 10 s: well past any ordinary
        # wait (queries take milliseconds; idle streams hold no connection), well short of a proxy's 30 s.
        # It bounds the wait for a connection, not a query on a hung server: that is /readyz's to report
        # (chatroom/health.py, which has its own 2 s bounds).
        "pool_timeout": _int("DB_POOL_TIMEOUT_SECONDS", 10),
    }

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "1") == "1"
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    SESSION_IDLE_MINUTES = _int("SESSION_IDLE_MINUTES", 120)
    SESSION_MAX_HOURS = _int("SESSION_MAX_HOURS", 12)
    PERMANENT_SESSION_LIFETIME = 12 * 3600

    # A chat tab stays open for hours: the CSRF token lives as long as the session.
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_SSL_STRICT = os.environ.get("WTF_CSRF_SSL_STRICT", "1") == "1"
    MAX_CONTENT_LENGTH = 64 * 1024
    MAX_FORM_MEMORY_SIZE = 64 * 1024
    MAX_FORM_PARTS = 50

    RATELIMIT_ENABLED = os.environ.get("RATELIMIT_ENABLED", "1") == "1"
    ROOMS_PER_HOUR = _int("ROOMS_PER_HOUR", 20)  # rooms one account may create per hour (chatroom/limits.py)
    MEMBERS_PER_ROOM = _int("MEMBERS_PER_ROOM", 500)  # seats open at once in a room, the host's included
    # How many proxies in front of the app append to X-Forwarded-For (0: trust none; a PaaS router is 1).
    TRUSTED_PROXY_HOPS = _int("TRUSTED_PROXY_HOPS", 0)
    FORWARDED_ALLOW_IPS = forwarded_allow_ips(TRUSTED_PROXY_HOPS)  # for gunicorn.conf.py

    # The live stream (see chatroom/stream.py).
    STREAM_HEARTBEAT_SECONDS = float(os.environ.get("STREAM_HEARTBEAT_SECONDS", "15"))
    STREAM_RETRY_MS = _int("STREAM_RETRY_MS", 2000)
    PRESENCE_TTL_SECONDS = float(os.environ.get("PRESENCE_TTL_SECONDS", "40"))
    # A room page load counts its reader as here this long (a reader without JavaScript has no stream):
    # longer than the page's auto-refresh (30 s), so a reader who keeps it on stays in "Here now".
    PRESENCE_PAGE_SECONDS = float(os.environ.get("PRESENCE_PAGE_SECONDS", "75"))
    # "Here now" names everyone up to this many people; above it, every stream gets only the count and a link to
    # the list (chat.people), so a class arriving costs each reader a few hundred bytes, not K lists of names.
    PRESENCE_LIST_MAX = _int("PRESENCE_LIST_MAX", 50)
    # "... is typing" lasts this long after the typist's last signal (sent at most every 3 s while typing).
    TYPING_TTL_SECONDS = 5
    # Caps on open streams (chatroom/stream.py), per process: per seat (tabs and devices), per client
    # address (a class behind one address shares it), per worker (0: what the open-files limit leaves;
    # gunicorn.conf.py works it out). Over a cap: 429 or 503 with Retry-After.
    STREAMS_PER_SEAT = _int("STREAMS_PER_SEAT", 6)
    STREAMS_PER_ADDRESS = _int("STREAMS_PER_ADDRESS", 500)
    STREAMS_PER_WORKER = _int("STREAMS_PER_WORKER", 0)
    STREAM_REFUSAL_RETRY_SECONDS = _int("STREAM_REFUSAL_RETRY_SECONDS", 60)
    TYPING_MIN_INTERVAL_SECONDS = 3

    MESSAGES_PER_PAGE = 50
    # The host's queue and reports list this many items each (the rest are a count), and one participant
    # may have this many messages waiting for approval (chatroom/services/moderation.py).
    HOST_PANEL_SHOWN = _int("HOST_PANEL_SHOWN", 50)
    PENDING_PER_PARTICIPANT = _int("PENDING_PER_PARTICIPANT", 10)
    # The room page falls back to polling when the stream stays silent this long (a proxy holding
    # it back), polls at this pace, and tries the stream again after this long (doubling).
    LIVE_STALL_SECONDS = 10
    LIVE_POLL_SECONDS = 5
    LIVE_RETRY_SECONDS = 30
    BCRYPT_ROUNDS = _int("BCRYPT_ROUNDS", 12)  # lowered only by tests and benchmarks
    # bcrypt runs in gevent's thread pool, at most this many at once per worker (chatroom/passwords.py).
    BCRYPT_CONCURRENCY = _int("BCRYPT_CONCURRENCY", 2)

    # Outgoing mail (chatroom/mail.py). Without MAIL_SERVER, mail is written to the log instead.
    MAIL_SERVER = os.environ.get("MAIL_SERVER") or None
    MAIL_PORT = _int("MAIL_PORT", 587)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_FROM = os.environ.get("MAIL_FROM") or None  # falls back to MAIL_USERNAME
    MAIL_USE_TLS = os.environ.get("MAIL_USE_TLS", "1") == "1"  # STARTTLS before logging in
    MAIL_TIMEOUT_SECONDS = float(os.environ.get("MAIL_TIMEOUT_SECONDS", "10"))
    # Scheme and host of every absolute link (reset mail, share link, QR code): https://chat.example.org.
    # Production refuses to start without it or ALLOWED_HOSTS: the Host header is the client's to forge.
    PUBLIC_URL = os.environ.get("PUBLIC_URL") or None
    # Host names this deployment answers to (Flask refuses others with 400); links then follow the Host header.
    TRUSTED_HOSTS = host_list(os.environ.get("ALLOWED_HOSTS"))

    # Operations (chatroom/metrics.py, chatroom/logs.py): Prometheus metrics at /metrics only when a
    # token is set (scrapers send it as a bearer token); LOG_FORMAT=json for platforms that index logs.
    METRICS_TOKEN = os.environ.get("METRICS_TOKEN") or None
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "text")

    PASSWORD_RESET_MAX_AGE = 3600  # seconds a password reset link works
    TWO_FACTOR_PENDING_SECONDS = 300  # between a correct password and the code
    TWO_FACTOR_ISSUER = os.environ.get("TWO_FACTOR_ISSUER", "Chatroom")  # the name shown in authenticator apps


class DevelopmentConfig(Config):
    """``make run`` on a laptop: plain HTTP, so cookies cannot be Secure."""

    ENV_NAME = "development"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    WTF_CSRF_SSL_STRICT = False


class TestConfig(Config):
    """The test suite: the services come from the environment the test script sets."""

    ENV_NAME = "test"
    TESTING = True
    SECRET_KEY = "test-secret-key"  # noqa: S105
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_SECURE = False
    WTF_CSRF_SSL_STRICT = False
    BCRYPT_ROUNDS = 4
    STREAM_HEARTBEAT_SECONDS = float(os.environ.get("STREAM_HEARTBEAT_SECONDS", "1"))
    # The load tests open hundreds of tabs as one participant from one address; the cap tests lower these.
    STREAMS_PER_SEAT = _int("STREAMS_PER_SEAT", 1000)
    STREAMS_PER_ADDRESS = _int("STREAMS_PER_ADDRESS", 10_000)
    # Load tests post far faster than people; the rate-limit tests switch limits back on.
    RATELIMIT_ENABLED = os.environ.get("RATELIMIT_ENABLED", "0") == "1"


def config_for(name: str | None) -> type[Config]:
    """Pick the configuration class named by ``CHATROOM_ENV`` (production by default)."""
    return {"development": DevelopmentConfig, "test": TestConfig}.get(name or "", Config)
