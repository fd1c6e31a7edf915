"""Script bundles and their route: the room page's scripts as one file, compressed once, cached under its hash;
the stylesheet the same way (``app.css``: one file, without its comments).

One response instead of ten (each carries some 850 bytes of headers), brotli across all the
files, and no revalidation on later visits: the URL names the content's hash, so the file can
be cached for a year. The sources stay as they are in ``static/`` (``vendor/`` unmodified):
one small file per behaviour in ``static/js/`` (``core.js`` says how they talk), then htmx, then
its SSE extension. Ours come first so that their listeners are in place before htmx starts (it
opens the stream as soon as it runs); among them ``menu.js`` precedes ``log.js`` so a new
message has its menu button before the log scrolls to it.

Our files are sent slimmed (``slim``): whole-line comments and indentation go, which is a
quarter of their bytes; the sources keep their comments for readers. Vendor files are sent
as they are (already minified).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache

import brotli
from flask import Flask, Response, abort, current_app, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from . import compression
from .pages import bp

ROOM_SCRIPTS = (
    "js/core.js",
    "js/theme.js",
    "js/announce.js",
    "js/menu.js",
    "js/log.js",
    "js/composer.js",
    "js/typing.js",
    "js/live.js",
    "js/seen.js",
    "js/presence.js",
)
VENDOR_SCRIPTS = ("vendor/htmx.min.js", "vendor/hx-sse.min.js")

BUNDLES: dict[str, tuple[str, ...]] = {
    "room.js": ROOM_SCRIPTS + VENDOR_SCRIPTS,
    "room-host.js": (*ROOM_SCRIPTS, "js/host.js", *VENDOR_SCRIPTS),  # the host's room: their People list too
    # Loaded by seen.js only when a room page needs it (a live reaction or mention, "new since you left", an "@").
    "participation.js": ("js/participation.js", "js/mentions.js"),
    # The room form: the browser's time zone (zone.js). The owner page: copying the share link (share.js).
    "form.js": ("js/core.js", "js/theme.js", "js/zone.js"),
    "share.js": ("js/core.js", "js/theme.js", "js/share.js"),
    "app.css": ("css/app.css",),
    "console.css": ("css/console.css",),  # the facilitator's pages, and the host's tools in the room
}


@dataclass(frozen=True)
class Bundle:
    """A bundle's bytes as sent: plain and pre-compressed, and the hash that names this version."""

    plain: bytes
    encoded: dict[str, bytes]
    digest: str


def bundle(name: str) -> Bundle:
    """The current version of bundle ``name`` (rebuilt when a source file changes). :raise KeyError: unknown."""
    folder = current_app.static_folder or ""
    paths = tuple(os.path.join(folder, source) for source in BUNDLES[name])
    return _build(tuple((path, os.stat(path).st_mtime_ns, os.stat(path).st_size) for path in paths))


_TRAILING_COMMENT = re.compile(rb"(?<=[;{},)\]])\s+// .*$")


def slim(source: bytes) -> bytes:
    """One of our scripts without its comments, blank lines and indentation.

    Safe for our files because none has a string or template literal that spans lines, a line
    that starts with ``//`` is always a comment there, and so is `` // `` after the end of a
    statement or block (``;``, ``{``, ``}``, ``,``, ``)`` or ``]``): no string of ours holds that.
    """
    kept = (_TRAILING_COMMENT.sub(b"", line.strip()) for line in source.splitlines())
    return b"\n".join(line for line in kept if line and not line.startswith(b"//"))


@lru_cache(maxsize=8)
def _build(sources: tuple[tuple[str, int, int], ...]) -> Bundle:
    parts = []
    for path, _mtime, _size in sources:
        with open(path, "rb") as file:
            text = file.read()
        if path.endswith(".css"):
            parts.append(compression.slim_css(text))
            continue
        if os.sep + "vendor" + os.sep not in path:
            text = slim(text)
        parts.append(text.rstrip() + b"\n;\n")  # each file ends its own statements
    plain = b"".join(parts)
    encoded = {"br": brotli.compress(plain, quality=11), "gzip": gzip.compress(plain, 9, mtime=0)}
    return Bundle(plain, encoded, hashlib.sha256(plain).hexdigest()[:16])


def bundle_url(name: str) -> str:
    """The URL of the current version of bundle ``name``, for a ``<script src>`` or a stylesheet ``<link>``."""
    return url_for("views.asset", name=name, v=bundle(name).digest)


@bp.get("/assets/<name>")
def asset(name: str) -> BaseResponse:
    """A script bundle or the stylesheet (``chatroom/assets.py``), pre-compressed; cached for a year when asked
    for by its hash.

    :raise 404: no such bundle.
    """
    if name not in BUNDLES:
        abort(404)
    current = bundle(name)
    encoding = compression.choose_encoding(request.headers.get("Accept-Encoding", ""))
    mimetype = "text/css" if name.endswith(".css") else "text/javascript"
    response = Response(current.encoded[encoding] if encoding else current.plain, mimetype=mimetype)
    if encoding:
        response.headers["Content-Encoding"] = encoding
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{current.digest}-{encoding or 'identity'}")
    if request.args.get("v") == current.digest:
        response.cache_control.public = True
        response.cache_control.max_age = 365 * 24 * 3600
        response.cache_control.immutable = True
    else:
        response.cache_control.no_cache = True
    return response.make_conditional(request)


def init_app(app: Flask) -> None:
    """Make ``bundle_url`` available to templates."""
    app.add_template_global(bundle_url)
