"""Response compression: brotli (or gzip) for pages, fragments, CSS and JavaScript; never the event stream.

Pages and fragments go through Flask-Compress (brotli quality 5: ~10% smaller than gzip
in about a millisecond). We register its ``after_request`` ourselves, behind a guard
that lets ``text/event-stream`` through untouched whatever the configuration says: a
compressor holds bytes back until it has enough to emit, which would turn a live
stream into a silent one (the very failure the page's polling fallback exists for when
a proxy does it). No other streamed response is compressed either (transcript exports).

Static files change only with a deploy, so each is compressed once, at brotli's best
quality (htmx is ~1 KB smaller than at quality 5), and kept in memory; the ETag gets
the encoding as a suffix, so revalidation still answers 304.
"""

from __future__ import annotations

import gzip
import os
from functools import lru_cache

import brotli
import rcssmin
from flask import Flask, Response, current_app, request
from flask_compress import Compress
from werkzeug.security import safe_join

STREAM_MIMETYPE = "text/event-stream"
TEXT_MIMETYPES = [
    "text/html",
    "text/css",
    "text/javascript",
    "application/javascript",
    "application/json",
    "text/plain",
]

compress = Compress()


def init_app(app: Flask) -> None:
    """Compress text responses; the event stream is left alone (see the module docstring)."""
    app.config.setdefault("COMPRESS_MIMETYPES", TEXT_MIMETYPES)
    app.config.setdefault("COMPRESS_ALGORITHM", ["br", "gzip"])
    app.config.setdefault("COMPRESS_BR_LEVEL", 5)
    app.config.setdefault("COMPRESS_LEVEL", 6)
    app.config["COMPRESS_STREAMS"] = False
    app.config["COMPRESS_REGISTER"] = False  # we register our guarded hook instead
    if STREAM_MIMETYPE in app.config["COMPRESS_MIMETYPES"]:
        raise ValueError("COMPRESS_MIMETYPES must not include text/event-stream: it would hold the stream back")
    compress.init_app(app)
    app.after_request(_compress)


def _compress(response: Response) -> Response:
    if response.mimetype == STREAM_MIMETYPE:
        return response
    if request.endpoint == "static" and response.status_code == 200 and response.direct_passthrough:
        return _static(response)
    return compress.after_request(response)


def _static(response: Response) -> Response:
    """A static file from the in-memory cache of compressed files (or as it is, for an unknown encoding)."""
    response.vary.add("Accept-Encoding")
    encoding = choose_encoding(request.headers.get("Accept-Encoding", ""))
    folder, filename = current_app.static_folder, (request.view_args or {}).get("filename", "")
    path = safe_join(folder, filename) if folder else None
    if encoding is None or response.mimetype not in current_app.config["COMPRESS_MIMETYPES"] or path is None:
        return response
    stat = os.stat(path)
    body = _compressed_file(path, stat.st_mtime_ns, stat.st_size, encoding)
    response.close()  # the file wrapper Flask opened
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = encoding
    etag, weak = response.get_etag()
    if etag:
        response.set_etag(f"{etag}:{encoding}", weak=bool(weak))
    response.make_conditional(request)
    return response


def slim_css(source: bytes) -> bytes:
    """A stylesheet minified by rcssmin (comments, white space and redundant punctuation gone).

    The comments document ``static/css/`` for its readers; the room's first load (its weight budget,
    ``docs/front-end.md``) need not carry them: about 800 of the stylesheet's 3,400 compressed bytes.
    """
    return rcssmin.cssmin(source.decode()).encode() + b"\n"


@lru_cache(maxsize=64)
def _compressed_file(path: str, mtime_ns: int, size: int, encoding: str) -> bytes:
    with open(path, "rb") as file:
        data = file.read()
    if path.endswith(".css"):
        data = slim_css(data)
    return brotli.compress(data, quality=11) if encoding == "br" else gzip.compress(data, 9, mtime=0)


def choose_encoding(accept_encoding: str) -> str | None:
    """``br`` or ``gzip`` if the client takes it (brotli preferred at equal weight), else None."""
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        weights[name.strip()] = weight
    star = weights.get("*", 0.0)
    best = max(("br", "gzip"), key=lambda name: (weights.get(name, star), name == "br"))
    return best if weights.get(best, star) > 0 else None
