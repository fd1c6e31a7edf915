"""Security headers on every response, no caching of anything personal, and trusting proxies only as far as configured.

Caching: every response but the public assets (``PUBLIC_ENDPOINTS``: files in
``static/`` and the script bundles) says ``Cache-Control: no-store``. Dashboards, owner
pages, audit logs, account pages, room pages, transcripts and every fragment are
someone's own, and a shared or back-button cache must not keep them; the public pages
(front page, sign-in form) carry a CSRF token, which is personal too. The event stream
keeps the ``no-cache, no-transform`` of ``chatroom/stream.py``: a cache never holds a
response that does not end.

The Content-Security-Policy allows nothing inline and nothing from other hosts:
htmx is configured to need neither (``includeIndicatorCSS`` off, no ``hx-on``),
and all our script and style live in ``static/``. One exception, for style only: a page
may carry one ``<style nonce>`` of rules about its own viewer (the room marks the reader's
own messages with ``[data-author="<seat>"]``, so every message stays the same bytes for
everyone); ``style_nonce()`` in a template makes the nonce and adds it to that response's
``style-src``. Scripts never get a nonce.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g, request
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from werkzeug.middleware.proxy_fix import ProxyFix

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'none'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def style_nonce() -> str:
    """This response's nonce for its one ``<style nonce>`` (made on first use; see the module docstring)."""
    if "style_nonce" not in g:
        g.style_nonce = secrets.token_urlsafe(16)
    return str(g.style_nonce)


# Scripts and stylesheets are not documents: the policies that govern a document (what it may load, frame,
# use or send as a referrer) mean nothing on them, and they cost some 400 bytes a response on the room's first
# load (its budget: docs/front-end.md). nosniff is the one that matters for them, and they keep it.
SUBRESOURCES = frozenset({"text/css", "text/javascript", "application/javascript"})
DOCUMENT_ONLY = frozenset(
    {
        "Content-Security-Policy",
        "X-Frame-Options",
        "Permissions-Policy",
        "Cross-Origin-Opener-Policy",
        "Referrer-Policy",
    }
)

# What a response gets unless it set its own, for documents and for scripts and styles: (lowercased name, name, value).
_FOR_DOCUMENTS = tuple((name.lower(), name, value) for name, value in HEADERS.items())
_FOR_SUBRESOURCES = tuple(entry for entry in _FOR_DOCUMENTS if entry[1] not in DOCUMENT_ONLY)

# The only responses a cache may keep: the same bytes for everyone, with no session in them.
PUBLIC_ENDPOINTS = frozenset({"static", "views.asset"})


def _no_store(response: Response) -> Response:
    """``no-store`` on everything but ``PUBLIC_ENDPOINTS``; other directives a view set (``no-transform``) stay."""
    if request.endpoint in PUBLIC_ENDPOINTS or response.mimetype == "text/event-stream":
        return response  # the event stream's headers are its protocol's (chatroom/stream.py): never stored whole
    cache = response.cache_control
    cache.no_store = True
    cache.public = False
    cache.max_age = None
    cache.s_maxage = None
    cache.immutable = False
    return response


def _secure_headers(response: Response) -> Response:
    """The security headers: all of them on documents, only those that mean something on scripts and styles."""
    subresource = response.mimetype in SUBRESOURCES
    if request.endpoint == "static":
        # send_file's extras: "inline; filename=…" is the default anyway, the ETag alone revalidates, and a
        # byte range of a body we compress on the way out would not be the file's.
        for name in ("Content-Disposition", "Last-Modified", "Accept-Ranges"):
            response.headers.pop(name, None)
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}  # one pass, not one search per header we add
    for key, name, value in _FOR_SUBRESOURCES if subresource else _FOR_DOCUMENTS:
        if key not in present:
            headers.add(name, value)
    nonce = g.get("style_nonce")
    if nonce and response.mimetype == "text/html":
        csp = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = csp.replace(
            "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'", 1
        )
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that a public asset never answers with the session.

    Flask-Login looks at the session after every request, which makes Flask add ``Vary: Cookie``:
    a shared cache would then keep one copy of a year-long, immutable bundle per visitor's cookie.
    A public response (``PUBLIC_ENDPOINTS``) that did not change the session neither varies on the
    cookie nor sets it (RFC 9111, section 4.1: Vary names what selects a stored response).
    """

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:  # type: ignore[override]
        """Save ``session`` into ``response`` as Flask does, unless ``response`` is public and nothing changed."""
        if request.endpoint in PUBLIC_ENDPOINTS and not session.modified:
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    """Add the headers and the caching rule; read ``X-Forwarded-*`` only from ``TRUSTED_PROXY_HOPS`` proxies."""
    app.session_interface = SessionInterface()
    app.after_request(_secure_headers)
    app.after_request(_no_store)
    app.add_template_global(style_nonce)
    hops = int(app.config.get("TRUSTED_PROXY_HOPS", 0))
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
