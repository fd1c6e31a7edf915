"""Security headers on every response, and trusting proxies only as far as configured.

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


def _secure_headers(response: Response) -> Response:
    subresource = response.mimetype in SUBRESOURCES
    for name, value in HEADERS.items():
        if not (subresource and name in DOCUMENT_ONLY):
            response.headers.setdefault(name, value)
    nonce = g.get("style_nonce")
    if nonce and response.mimetype == "text/html":
        csp = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = csp.replace(
            "style-src 'self'", f"style-src 'self' 'nonce-{nonce}'", 1
        )
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def init_app(app: Flask) -> None:
    """Add the headers; trust ``X-Forwarded-For``/``-Proto`` only from ``TRUSTED_PROXY_HOPS`` proxies."""
    app.after_request(_secure_headers)
    app.add_template_global(style_nonce)
    hops = int(app.config.get("TRUSTED_PROXY_HOPS", 0))
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
