"""Script bundles and their route: the room page's scripts as one file, compressed once, cached under its hash;
the stylesheet the same way (``app.css``: one file, without its comments).

One response instead of ten (each carries some 850 bytes of headers), brotli across all the
files, and no revalidation on later visits: the URL names the content's hash, so the file can
be cached for a year. The sources stay as they are in ``static/`` (``vendor/`` unmodified):
one small file per behaviour in ``static/js/`` (``core.js`` says how they talk), then htmx, then
its SSE extension. Ours come first so that their listeners are in place before htmx starts (it
opens the stream as soon as it runs); the message menu (``menu.js``) comes later, in a bundle of its
own, when it is first used.

Our files are sent minified by terser (``static/js/min/``, made by ``make assets``; ``minified``),
about a fifth fewer bytes after brotli than the sources without their comments; the sources keep
their comments for readers. Vendor files are sent as they are (already minified).
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

ROOM_SCRIPTS = (  # theme.js comes when the theme is first switched (core.js)
    "js/core.js",
    "js/announce.js",
    "js/side.js",
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
    # Loaded by log.js when a message's options link is first used: the first load does without it.
    "menu.js": ("js/menu.js",),
    "theme.js": ("js/theme.js",),
    # Loaded by seen.js only when a room page needs it (a live reaction or mention, "new since you left", an "@").
    "participation.js": ("js/participation.js", "js/mentions.js"),
    # The room form: the browser's time zone (zone.js). The owner page: copying the share link (share.js).
    "form.js": ("js/core.js", "js/theme.js", "js/zone.js"),
    "share.js": ("js/core.js", "js/theme.js", "js/share.js"),
    "app.css": ("css/app.css",),
    "menu.css": ("css/menu.css",),  # with the message menu's actions (chat/_menu.html), when a menu is first used
    "pages.css": ("css/pages.css",),  # every page but the room's
    "console.css": ("css/console.css",),  # the facilitator's pages, and the host's tools in the room
}


@dataclass(frozen=True)
class Bundle:
    """A bundle's bytes as sent: plain and pre-compressed, and the hash that names this version."""

    plain: bytes
    encoded: dict[str, bytes]
    digest: str


def bundle(name: str) -> Bundle:
    """The current version of bundle ``name`` (rebuilt when a source file or its minified form changes).

    :raise KeyError: unknown.
    """
    folder = current_app.static_folder or ""
    paths = tuple(os.path.join(folder, source) for source in BUNDLES[name])
    return _build(tuple((path, _stamp(path), _stamp(_min_path(path))) for path in paths))


def _min_path(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, "min", name)


def _stamp(path: str) -> int:
    """When the file at ``path`` last changed (ns), and 0 when there is none."""
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


_TRAILING_COMMENT = re.compile(rb"(?<=[;{},)\]])\s+// .*$")


def slim(source: bytes) -> bytes:
    """One of our scripts without its comments, blank lines and indentation.

    Safe for our files because none has a string or template literal that spans lines, a line
    that starts with ``//`` is always a comment there, and so is `` // `` after the end of a
    statement or block (``;``, ``{``, ``}``, ``,``, ``)`` or ``]``): no string of ours holds that.
    """
    kept = (_TRAILING_COMMENT.sub(b"", line.strip()) for line in source.splitlines())
    return b"\n".join(line for line in kept if line and not line.startswith(b"//"))


def minified(path: str, source: bytes) -> bytes:
    """Our script at ``path`` as it is sent: terser's output in ``static/js/min/`` (``make assets``) while that was
    made from this very ``source`` (its first line holds the source's SHA-256), else ``slim(source)``.

    So an edited script is never served from a stale minified file; ``tests/test_assets.py`` keeps them current.
    """
    try:
        with open(_min_path(path), "rb") as file:
            head, _, body = file.read().partition(b"\n")
    except FileNotFoundError:
        return slim(source)
    if head.strip() != b"/* sha256 " + hashlib.sha256(source).hexdigest().encode() + b" */":
        return slim(source)
    return body


@lru_cache(maxsize=16)
def _build(sources: tuple[tuple[str, int, int], ...]) -> Bundle:
    parts = []
    for path, _changed, _min_changed in sources:
        with open(path, "rb") as file:
            text = file.read()
        if path.endswith(".css"):
            parts.append(compression.slim_css(text))
            continue
        if os.sep + "vendor" + os.sep not in path:
            text = minified(path, text)
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
    if request.args.get("v") == current.digest:
        # Named by its hash: never revalidated (immutable), so no ETag either (bytes off the room's first load).
        response.cache_control.public = True
        response.cache_control.max_age = 365 * 24 * 3600
        response.cache_control.immutable = True
    else:
        response.set_etag(f"{current.digest}-{encoding or 'identity'}")
        response.cache_control.no_cache = True
    return response.make_conditional(request)


def init_app(app: Flask) -> None:
    """Make ``bundle_url`` available to templates."""
    app.add_template_global(bundle_url)
