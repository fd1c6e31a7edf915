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
and all our script and style live in ``static/``.
"""

from __future__ import annotations

from flask import Flask, Response, request
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
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# Scripts and stylesheets are not documents: the policies that govern a document (what it may load, frame or
# use, where its links send a referrer) mean nothing on them, and they cost some 400 bytes a response on the
# room's first load (its weight budget: docs/front-end.md). nosniff is the one that matters for them.
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
    for name, value in HEADERS.items():
        if not (subresource and name in DOCUMENT_ONLY):
            response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    """Add the headers and the caching rule; read ``X-Forwarded-*`` only from ``TRUSTED_PROXY_HOPS`` proxies."""
    app.after_request(_secure_headers)
    app.after_request(_no_store)
    hops = int(app.config.get("TRUSTED_PROXY_HOPS", 0))
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
