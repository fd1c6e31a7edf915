"""Taking a connection from gunicorn's gevent worker, so a room's writer (``chatroom/fanout.py``) keeps the socket.

A stream (``chatroom/stream.py``) sends its head and first bytes as an ordinary WSGI response, then takes
the connection: gunicorn has written everything so far, must neither end the chunked body when the response
iterator finishes nor read another request from the connection, and closing its socket object must not close
the descriptor. gunicorn's own objects do all of that (``Response.chunked``, ``Response.force_close()``,
``socket.detach()``); this module only reaches them. Nothing here imports Flask.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

# Where a request under gunicorn keeps the server's start_response (its __self__ is the response to take over).
START_RESPONSE = "chatroom.start_response"

WsgiApp = Callable[[dict[str, Any], Any], Any]


def capture_start_response(inner: WsgiApp) -> WsgiApp:
    """``inner`` wrapped so a request served by gunicorn keeps the server's ``start_response`` in its environ."""

    def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
        if "gunicorn.socket" in environ:
            environ[START_RESPONSE] = start_response
        return inner(environ, start_response)

    return wsgi_app


def _gunicorn_response(environ: dict[str, Any]) -> Any:
    return getattr(environ.get(START_RESPONSE), "__self__", None)


def can_take_over(environ: dict[str, Any]) -> bool:
    """Whether this request's socket can go to the room's writer: gunicorn's gevent worker, HTTP/1.x, a
    monkey-patched socket that can be detached, and the response object the server writes through."""
    if "gevent" not in sys.modules:
        return False
    from gevent import monkey

    sock = environ.get("gunicorn.socket")
    response = _gunicorn_response(environ)
    return (
        monkey.is_module_patched("socket")
        and sock is not None
        and type(sock).__module__.startswith("gevent")
        and hasattr(sock, "detach")
        and response is not None
        and all(hasattr(response, name) for name in ("chunked", "force_close", "headers_sent"))
        and environ.get("HTTP_VERSION") != "2"
        and str(environ.get("SERVER_PROTOCOL", "")).startswith("HTTP/1")
    )


def take_socket(environ: dict[str, Any]) -> tuple[int, bool]:
    """Take the connection from gunicorn: (its file descriptor, whether the body is chunked). Call only when
    ``can_take_over`` said so, after the last bytes gunicorn is to send."""
    response = _gunicorn_response(environ)
    chunked = bool(response.chunked)
    response.chunked = False
    response.force_close()
    return environ["gunicorn.socket"].detach(), chunked
