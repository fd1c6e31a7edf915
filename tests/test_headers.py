"""Security headers, cookies, and that nothing we ship needs what the Content-Security-Policy forbids.

The CSP (``chatroom/headers.py``) allows no inline script or style and no eval, so
a template with an inline ``<script>``, a ``style=`` attribute, an ``on*=``
handler or an ``hx-on`` attribute would silently break in the browser: the scan
below fails with the file and line instead. Pages are rendered and scanned too,
for markup produced at run time (the two-factor QR code's SVG, for one).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.exceptions import HTTPException, NotFound

from chatroom import create_app
from chatroom.extensions import db
from chatroom.services import accounts
from config import Config
from support.app import close_app, empty_database, fast_app_fixture, make_config
from support.clients import Client
from support.constants import PASSWORD, ROOT
from support.policy import EXPECTED
from support.world import World, build_world, client_for, url_of

pytestmark = pytest.mark.once  # response headers of every page: the same on either backend (tests/run.sh)

BASELINE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


headers_app = fast_app_fixture()


@pytest.fixture
def world(headers_app: Flask) -> World:
    return build_world(headers_app)


def _pages(world: World) -> list[tuple[str, str, dict[str, str]]]:
    """(role, path, headers) of pages and fragments of every kind."""
    code = world.room_a
    hx = {"HX-Request": "true"}
    return [
        ("anonymous", "/", {}),
        ("anonymous", "/login", {}),
        ("anonymous", "/signup", {}),
        ("anonymous", f"/r/{code}", {}),  # the join form
        ("anonymous", "/nowhere", {}),  # 404 page
        ("anonymous", "/password/forgot", {}),
        ("participant", f"/r/{code}", {}),
        ("participant", f"/r/{code}/messages/{world.pat_seq}", {}),
        ("participant", f"/r/{code}/messages?before=2", hx),
        ("participant", f"/r/{code}/newer?after=0", hx),
        ("participant", f"/r/{code}/newer?after=0", {}),
        ("owner", "/rooms/", {}),
        ("owner", "/rooms/", hx),
        ("owner", "/rooms/new", {}),
        ("owner", f"/rooms/{code}", {}),
        ("owner", f"/rooms/{code}/edit", {}),
        ("owner", f"/rooms/{code}/audit", {}),
        ("owner", f"/rooms/{code}/delete", {}),
        ("owner", f"/rooms/{code}/transcript.html", {}),
        ("owner", f"/rooms/{code}/qr.svg", {}),
        ("owner", f"/r/{code}", {}),
        ("owner", "/account", {}),
        ("owner", "/account/two-factor", {}),
        ("owner", "/account/password", {}),
    ]


def _fetch(app: Flask, world: World) -> Iterator[tuple[str, str, Any]]:
    clients: dict[str, Client] = {}
    for role, path, headers in _pages(world):
        if path != "/nowhere" and not _routable(app, path):
            continue  # a page of a feature this build does not have
        if role not in clients:
            clients[role] = client_for(app, world, role)
        yield role, path, clients[role].get(path, headers=headers)


def _routable(app: Flask, path: str) -> bool:
    try:
        app.url_map.bind("localhost").match(path.split("?")[0], method="GET")
    except NotFound:
        return False
    except HTTPException:  # a redirect to the canonical URL, say
        return True
    return True


def _csp(value: str) -> dict[str, str]:
    return {part.split()[0]: part.partition(" ")[2] for part in (p.strip() for p in value.split(";")) if part}


def test_every_page_and_fragment_carries_a_strict_csp_and_the_baseline_headers(headers_app, world):
    checked = 0
    for role, path, response in _fetch(headers_app, world):
        where = f"{role} {path}"
        csp = response.headers.get("Content-Security-Policy")
        assert csp, f"{where}: no Content-Security-Policy"
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "*" not in csp, f"{where}: {csp}"
        policy = _csp(csp)
        assert policy.get("frame-ancestors") == "'none'", where
        assert policy.get("script-src") == "'self'", where
        # Style: 'self', plus a nonce only on a page that carries its one <style nonce> (the room's "mine" rule).
        style = policy.get("style-src", "")
        nonce = re.fullmatch(r"'self' 'nonce-([A-Za-z0-9_-]{22})'", style)
        assert style == "'self'" or nonce, f"{where}: {style}"
        if nonce:
            body = response.get_data(as_text=True)
            assert body.count("<style") == 1 and f'<style nonce="{nonce.group(1)}">' in body, where
        assert policy.get("object-src") == "'none'" and policy.get("base-uri") == "'none'", where
        assert policy.get("default-src") == "'self'" and policy.get("form-action") == "'self'", where
        for name, value in BASELINE.items():
            assert response.headers.get(name) == value, f"{where}: {name}"
        assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), where
        permissions = response.headers.get("Permissions-Policy", "")
        assert all(f"{feature}=()" in permissions for feature in ("camera", "microphone", "geolocation")), where
        assert "Strict-Transport-Security" not in response.headers, f"{where}: HSTS over plain HTTP"
        checked += 1
    assert checked >= 20


def test_the_event_stream_and_errors_carry_the_headers_too(headers_app, world):
    participant = client_for(headers_app, world, "participant")
    response = participant.get(f"/r/{world.room_a}/events", buffered=False)
    try:
        assert response.status_code == 200
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "no-transform" in response.headers["Cache-Control"]
    finally:
        response.close()
    anonymous = client_for(headers_app, world, "anonymous")
    for response in (anonymous.get(f"/r/{world.room_a}/events"), anonymous.post("/logout")):
        assert response.status_code in (302, 400, 403)
        assert response.headers["X-Frame-Options"] == "DENY"


def test_hsts_only_over_https(headers_app):
    plain = headers_app.test_client()
    assert "Strict-Transport-Security" not in plain.get("/").headers
    secure = headers_app.test_client()
    response = secure.get("/", base_url="https://localhost")
    hsts = response.headers.get("Strict-Transport-Security", "")
    assert re.fullmatch(r"max-age=(\d+); includeSubDomains", hsts) and int(hsts.split("=")[1].split(";")[0]) >= 15552000


def test_forwarded_proto_is_ignored_unless_a_proxy_is_trusted(headers_app):
    client = headers_app.test_client()
    response = client.get("/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert "Strict-Transport-Security" not in response.headers  # TRUSTED_PROXY_HOPS is 0


PUBLIC = {"views.asset"}  # the same bytes for everyone: cacheable (static files are not in the URL table)


def test_nothing_personal_may_be_stored_by_a_cache(headers_app, world):
    """Every GET endpoint of the URL map, as the owner and as a participant (pages, fragments, transcripts,
    the QR code, the event stream, errors): ``no-store`` unless it is a public asset."""
    clients = {role: client_for(headers_app, world, role) for role in ("owner", "participant", "anonymous")}
    checked = set()
    for endpoint, methods in EXPECTED.items():
        if "GET" not in methods:
            continue
        url = url_of(headers_app, world, endpoint)
        for role, client in clients.items():
            for headers in ({}, {"HX-Request": "true"}):
                response = client.get(url, headers=headers, buffered=False)
                try:
                    directives = {d.strip().split("=")[0] for d in response.headers.get("Cache-Control", "").split(",")}
                finally:
                    response.close()
                where = f"{role} GET {url} ({response.status_code})"
                if endpoint in PUBLIC:
                    assert "no-store" not in directives and directives & {"max-age", "no-cache"}, where
                elif response.mimetype == "text/event-stream":  # a response that never ends is never stored
                    assert {"no-cache", "no-transform"} <= directives, where
                else:
                    assert "no-store" in directives, where
                    assert not directives & {"public", "max-age"}, where
                checked.add(endpoint)
    assert {"rooms.dashboard", "rooms.show", "rooms.audit", "rooms.transcript", "auth.account", "chat.room"} <= checked
    static = clients["anonymous"].get("/static/css/app.css")
    static.close()
    assert "no-store" not in static.headers.get("Cache-Control", "")  # public files keep their caching


def test_public_assets_neither_vary_on_nor_set_the_session_cookie(headers_app, world):
    """A year-long bundle is the same bytes for everyone: a shared cache must keep one copy, not one per cookie
    (Flask-Login reads the session on every request, which would add ``Vary: Cookie``)."""
    for role in ("owner", "participant", "anonymous"):
        client = client_for(headers_app, world, role)
        for url in ("/assets/room.js", "/static/css/app.css"):
            response = client.get(url)
            response.close()
            assert response.status_code == 200, (role, url)
            assert "Cookie" not in response.headers.get("Vary", ""), (role, url)
            assert "Set-Cookie" not in response.headers, (role, url)
        page = client.get("/login")
        assert "Cookie" in page.headers["Vary"]  # a page still says it depends on the session


@pytest.mark.parametrize("host", ["a" * 64 + ".example.org", "a..b", "chat.example.org..", "." * 300])
def test_a_malformed_host_header_gets_a_quiet_400(headers_app, host, caplog):
    """A label over 63 characters or an empty one cannot be read (IDNA): 400, no traceback, no 500."""
    caplog.set_level("INFO")
    client = headers_app.test_client()
    for method, path in (("GET", "/"), ("GET", "/login"), ("GET", "/r/abc"), ("POST", "/login"), ("GET", "/nowhere")):
        response = client.open(path, method=method, headers={"Host": host})
        assert response.status_code == 400, f"{method} {path}"
        assert "could not be understood" in response.get_data(as_text=True)
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.text  # no ERROR, no traceback


def test_pages_that_show_secrets_are_not_cached_or_leaked_by_referer(headers_app, world):
    if "auth.two_factor_setup" not in headers_app.view_functions:
        pytest.skip("no two-factor sign-in in this build")
    owner = client_for(headers_app, world, "owner")
    response = owner.get("/account/two-factor")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    reset = owner.get(f"/password/reset/{world.reset_token}")
    assert reset.headers["Referrer-Policy"] == "no-referrer"  # the token is in the URL


# -- cookies ---------------------------------------------------------------------------------------


def _set_cookies(response: object) -> dict[str, str]:
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):  # type: ignore[attr-defined]
        cookies[header.split("=", 1)[0]] = header
    return cookies


def _flags(header: str) -> set[str]:
    """A Set-Cookie header's attributes: names, and SameSite with its value."""
    attributes = (part.strip().lower() for part in header.split(";")[1:])
    return {a if a.startswith("samesite") else a.split("=")[0] for a in attributes}


def test_session_cookie_is_httponly_and_samesite_lax(headers_app):
    header = _set_cookies(headers_app.test_client().get("/login"))["session"]  # the page that holds a CSRF token
    flags = _flags(header)
    assert "httponly" in flags and "samesite=lax" in flags, header
    assert "secure" not in flags  # the test configuration runs over plain HTTP


@pytest.fixture
def production_app(_schema: None, database_url: str, redis_url: str | None) -> Iterator[Flask]:
    """The production configuration, as deployed: a real secret, Secure cookies, strict CSRF referer checks."""

    class ProductionLike(Config):
        ENV_NAME = "production"
        SECRET_KEY = "a-real-secret-" + "x" * 32
        SQLALCHEMY_DATABASE_URI = database_url
        REDIS_URL = redis_url
        SESSION_COOKIE_SECURE = True
        REMEMBER_COOKIE_SECURE = True
        WTF_CSRF_SSL_STRICT = True
        RATELIMIT_ENABLED = False
        BCRYPT_ROUNDS = 4
        PUBLIC_URL = "https://chat.example.org"

    app = create_app(ProductionLike)
    with app.app_context():
        empty_database(app)
    yield app
    close_app(app)


def test_production_cookies_are_secure_httponly_and_lax(production_app):
    assert production_app.config["SESSION_COOKIE_SECURE"] is True
    assert production_app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert production_app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    with production_app.test_request_context():
        accounts.sign_up("prod@example.org", "Pia Prod", PASSWORD)
        db.session.remove()
    production_app.test_client_class = Client
    client: Client = production_app.test_client()
    base = "https://chat.example.org"
    page = client.get("/login", base_url=base)
    assert "max-age=" in page.headers["Strict-Transport-Security"]
    token = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)
    form = {"csrf_token": token, "email": "prod@example.org", "password": PASSWORD}
    # Over HTTPS, Flask-WTF also wants a same-origin Referer: a form posted from elsewhere fails.
    assert client.post("/login", data=form, base_url=base).status_code == 400
    elsewhere = {"Referer": "https://evil.example/login"}
    assert client.post("/login", data=form, base_url=base, headers=elsewhere).status_code == 400
    response = client.post("/login", data=form, base_url=base, headers={"Referer": f"{base}/login"})
    assert response.status_code == 303
    header = _set_cookies(response)["session"]
    assert {"secure", "httponly", "samesite=lax"} <= _flags(header), header
    page = client.get("/rooms/", base_url=base).get_data(as_text=True)  # signing in started a new session
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    theme = client.post(
        "/theme", data={"csrf_token": token, "theme": "dark"}, base_url=base, headers={"Referer": f"{base}/"}
    )
    assert theme.status_code == 303
    assert {"secure", "httponly", "samesite=lax"} <= _flags(_set_cookies(theme)["theme"])


def test_the_test_configuration_is_not_the_production_one():
    """Guard: the Secure flag is off only where the app is told it runs over plain HTTP."""
    test_config = make_config("sqlite://", None)
    assert test_config.SESSION_COOKIE_SECURE is False and Config.SESSION_COOKIE_SECURE in (True, False)
    assert Config.SESSION_COOKIE_HTTPONLY is True and Config.SESSION_COOKIE_SAMESITE == "Lax"
    assert Config.REMEMBER_COOKIE_HTTPONLY is True and Config.MAX_CONTENT_LENGTH <= 64 * 1024


# -- nothing we ship needs what the CSP forbids ---------------------------------------------------------

HTML_RULES = [
    (re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I), "an inline <script> (CSP: script-src 'self')"),
    (re.compile(r"<script\b[^>]*\bsrc\s*=[^>]*>\s*\S[^<]*</script>", re.I), "a <script src> with a body"),
    # One exception: a page's own rules about its viewer, under this response's nonce (chatroom/headers.py).
    (re.compile(r'<style\b(?!\s+nonce="\{\{ style_nonce\(\) \}\}">)', re.I), "a <style> element without the nonce"),
    (re.compile(r"\sstyle\s*=", re.I), "a style= attribute (CSP: style-src 'self')"),
    (re.compile(r"(?<![\w:-])on[a-z]+\s*=\s*[\"'{]", re.I), "an on*= event handler attribute"),
    (re.compile(r"\bhx-on\b|\bdata-hx-on\b", re.I), "hx-on (needs eval)"),
    (re.compile(r"\bhx-(?:vals|vars)\s*=\s*[\"']\s*(?:js|javascript):", re.I), "hx-vals with js: (needs eval)"),
    (re.compile(r"\bhx-trigger\s*=\s*[\"'][^\"']*\[", re.I), "an hx-trigger filter [...] (needs eval)"),
    (re.compile(r"(?:href|src|action)\s*=\s*[\"']\s*javascript:", re.I), "a javascript: URL"),
    (re.compile(r"(?:<link\b[^>]*\bhref|\bsrc)\s*=\s*[\"']\s*(?:https?:)?//", re.I), "a resource from another host"),
]
JS_RULES = [
    (re.compile(r"\beval\s*\("), "eval()"),
    (re.compile(r"\bnew\s+Function\s*\("), "new Function()"),
    (re.compile(r"\bset(?:Timeout|Interval)\s*\(\s*[\"'`]"), "a string given to setTimeout/setInterval"),
    (re.compile(r"setAttribute\(\s*[\"'](?:on[a-z]+|style)[\"']"), "an on*/style attribute set from script"),
    (
        re.compile(r"[\"'`][^\"'`\n]*\b(?:style|on[a-z]+)\s*=\s*[\"\\][^\"'`\n]*[\"'`]"),
        "markup with style/on* in a string",
    ),
    (re.compile(r"\bhx-on\b"), "hx-on"),
    (re.compile(r"javascript:"), "a javascript: URL"),
]
CSS_RULES = [
    (re.compile(r"@import\s+url\(\s*[\"']?(?:https?:)?//", re.I), "a stylesheet from another host"),
    (re.compile(r"url\(\s*[\"']?(?:https?:)?//", re.I), "a resource from another host"),
    (re.compile(r"expression\s*\(", re.I), "a CSS expression()"),
]


def _violations(text: str, rules: list[tuple[re.Pattern[str], str]], where: str) -> list[str]:
    found = []
    for pattern, what in rules:
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{where}:{line}: {what}: {match.group(0)[:80]!r}")
    return found


def _shipped(folder: str, *suffixes: str) -> list[Path]:
    return sorted(
        path
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in suffixes and "vendor" not in path.relative_to(ROOT).parts
    )


@pytest.mark.parametrize(
    ("snippet", "bad"),
    [
        ("<script>alert(1)</script>", True),
        ('<script src="/static/x.js" defer></script>', False),
        ('<script src="/x.js">alert(1)</script>', True),
        ("<style>p{}</style>", True),
        ('<p style="color:red">', True),
        ('<button onclick="go()">', True),
        ("<body onload='x()'>", True),
        ('<div hx-on:click="x()">', True),
        ('<div hx-on::after-request="x()">', True),
        ("<div hx-vals='js:{a: 1}'>", True),
        ('<input hx-trigger="keyup[ctrlKey]">', True),
        ('<div hx-trigger="every 5s" hx-get="/x">', False),
        ('<a href="javascript:alert(1)">', True),
        ('<script src="https://cdn.example/x.js"></script>', True),
        ('<a href="https://example.org/help">help</a>', False),
        ('<p class="online">on=off</p>', False),
        ('<div data-on="x" data-button="y">', False),
    ],
)
def test_the_scan_finds_what_it_should(snippet, bad):
    assert bool(_violations(snippet, HTML_RULES, "snippet")) is bad


def test_templates_have_no_inline_script_style_handlers_or_hx_on():
    files = _shipped("templates", ".html", ".svg", ".j2")
    assert files
    problems = [v for path in files for v in _violations(path.read_text(), HTML_RULES, str(path.relative_to(ROOT)))]
    assert not problems, "Breaks the Content-Security-Policy:\n" + "\n".join(problems)


def test_static_files_need_nothing_the_csp_forbids():
    problems = []
    for path in _shipped("static", ".js", ".mjs"):
        problems += _violations(path.read_text(), JS_RULES, str(path.relative_to(ROOT)))
    for path in _shipped("static", ".css"):
        problems += _violations(path.read_text(), CSS_RULES, str(path.relative_to(ROOT)))
    for path in _shipped("static", ".html", ".svg"):
        problems += _violations(path.read_text(), HTML_RULES, str(path.relative_to(ROOT)))
    assert not problems, "Breaks the Content-Security-Policy:\n" + "\n".join(problems)


def test_htmx_runs_without_eval_or_inline_style():
    """The vendored htmx is configured so the CSP holds: no indicator CSS injected, eval off."""
    base = (ROOT / "templates" / "base.html").read_text()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", base)
    assert config, "base.html must configure htmx (htmx-config meta)"
    assert '"includeIndicatorCSS": false' in config.group(1)


def test_rendered_pages_have_no_inline_script_style_or_handlers(headers_app, world):
    problems = []
    for role, path, response in _fetch(headers_app, world):
        if response.mimetype in ("text/html", "image/svg+xml"):
            body = response.get_data(as_text=True)
            nonce = re.search(r"'nonce-([^']+)'", response.headers.get("Content-Security-Policy", ""))
            if nonce:  # the one style the policy allows: under this response's own nonce
                body = body.replace(f'<style nonce="{nonce.group(1)}">', "<!-- the page's own style -->", 1)
            problems += _violations(body, HTML_RULES, f"{role} GET {path}")
    assert not problems, "Rendered markup breaks the Content-Security-Policy:\n" + "\n".join(problems)


def test_the_room_marks_its_readers_own_messages_with_a_nonce_of_its_own(headers_app, world):
    """The one inline style: a rule naming the reader's seat, under a nonce new with every response."""
    participant = client_for(headers_app, world, "participant")
    first, second = (participant.get(f"/r/{world.room_a}") for _ in range(2))
    nonces = [re.search(r"'nonce-([^']+)'", r.headers["Content-Security-Policy"]).group(1) for r in (first, second)]
    assert nonces[0] != nonces[1]
    assert re.search(r'<style nonce="[^"]+">#log \[data-author="\d+"\]\{', first.get_data(as_text=True))
    # Pages without such a rule keep the plain policy.
    assert "nonce" not in participant.get("/").headers["Content-Security-Policy"]


def test_scripts_and_styles_carry_nosniff_but_not_the_document_only_headers(client):
    """A stylesheet or a script is not a document: no CSP, framing, permissions, opener or referrer policy
    on it (a few hundred bytes each on the room's first load), but always nosniff."""
    for path in ("/assets/app.css", "/assets/room.js", "/static/js/live.js", "/static/css/app.css"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        for name in ("Content-Security-Policy", "X-Frame-Options", "Permissions-Policy", "Referrer-Policy"):
            assert name not in response.headers, f"{path}: {name}"
        response.close()
    assert "Content-Security-Policy" in client.get("/login").headers
