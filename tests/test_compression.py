"""Compressed responses (brotli or gzip) for pages, fragments and static files; never for the event stream;
and the room page's weight over the wire."""

from __future__ import annotations

import re
from pathlib import Path

import brotli
import pytest
from flask import Flask

from chatroom import compression
from support.factories import fill_room

pytestmark = pytest.mark.once  # bytes and headers of pages and assets: the same on either backend (tests/run.sh)


def _get(client, url, encoding="br, gzip"):
    return client.get(url, headers={"Accept-Encoding": encoding})


def test_pages_are_compressed_with_brotli_or_gzip(client):
    brotli_page = _get(client, "/login")
    assert brotli_page.headers["Content-Encoding"] == "br"
    assert "<form" in brotli.decompress(brotli_page.get_data()).decode()
    assert "Accept-Encoding" in brotli_page.headers["Vary"] and "HX-Request" in brotli_page.headers["Vary"]
    assert _get(client, "/login", "gzip").headers["Content-Encoding"] == "gzip"
    assert "Content-Encoding" not in _get(client, "/login", "identity").headers


def test_static_files_are_compressed_and_revalidate(client):
    for path in ("/static/css/app.css", "/static/js/live.js", "/static/vendor/htmx.min.js"):
        with _get(client, path) as response:  # a file response: closing it closes the file
            assert response.status_code == 200
            assert response.headers["Content-Encoding"] == "br", path
            etag = response.headers["ETag"]
        with client.get(path, headers={"Accept-Encoding": "br, gzip", "If-None-Match": etag}) as again:
            assert again.status_code == 304, path


def test_the_event_stream_is_never_compressed(client, make_room, join):
    room = make_room()
    pat = join(room)
    response = pat.get(
        f"/r/{room.code}/events?after=0", headers={"Accept-Encoding": "br, gzip, deflate, zstd"}, buffered=False
    )
    try:
        assert response.mimetype == "text/event-stream"
        assert "Content-Encoding" not in response.headers
        first = next(iter(response.response))
        assert first.startswith(b"retry: ")  # plain bytes, at once
    finally:
        response.close()


def test_configuring_the_stream_for_compression_is_refused(app):
    other = Flask("other")
    other.config["COMPRESS_MIMETYPES"] = ["text/html", "text/event-stream"]
    with pytest.raises(ValueError, match="event-stream"):
        compression.init_app(other)


def _assets(html: str) -> list[str]:
    return re.findall(r'<link rel="stylesheet" href="([^"]+)"', html) + re.findall(r'<script src="([^"]+)"', html)


def test_room_page_weight_with_50_messages(app, make_room, join):
    """Compressed bytes of HTML + CSS + JS: at most 30 KB with JavaScript, 12 KB without (bodies only;
    the browser test measures the whole transfer, headers included)."""
    room = make_room(title="Weekly planning workshop")
    fill_room(app, room, 60)
    pat = join(room, "Pat")
    page = _get(pat, f"/r/{room.code}")
    html = brotli.decompress(page.get_data()).decode()
    assert len(re.findall(r'class="message[ "]', html)) == 50
    assets = _assets(html)
    assert len(assets) == 2  # app.css, and one script bundle: nothing from another host, no fonts
    assert all(a.startswith(("/static/", "/assets/")) for a in assets)
    sizes = {"page": len(page.get_data())}
    for asset in assets:
        with _get(pat, asset) as response:
            sizes[asset] = len(response.get_data())
    without_js = sizes["page"] + sizes[next(a for a in assets if ".css" in a)]
    print(f"room page, compressed bytes: {sizes}; JS on {sum(sizes.values())}, JS off {without_js}")
    assert sum(sizes.values()) <= 30_000, sizes
    assert without_js <= 12_000, sizes


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("gzip, deflate, br, zstd", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0, gzip;q=0", None),
        ("*", "br"),
        ("identity", None),
        ("", None),
    ],
)
def test_choose_encoding(header, chosen):
    assert compression.choose_encoding(header) == chosen


def test_static_files_take_gzip_when_that_is_all_the_client_takes(client):
    with _get(client, "/static/vendor/htmx.min.js", "gzip") as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert response.headers["Content-Length"] == str(len(response.get_data()))
    with _get(client, "/static/vendor/htmx.min.js", "identity") as response:
        assert "Content-Encoding" not in response.headers
        assert "Accept-Encoding" in response.headers["Vary"]


def test_the_room_scripts_come_as_one_bundle_room_js_first_cached_by_hash(client, app):
    from chatroom.assets import BUNDLES, bundle, minified

    with app.test_request_context():
        current = bundle("room.js")
    plain = client.get("/assets/room.js").get_data()
    assert plain == current.plain
    sources = BUNDLES["room.js"]
    paths = [str(Path(app.static_folder) / source) for source in sources]
    # Ours minified (static/js/min/, current), vendor files as they are; in order, ours first.
    sent = [
        (text if source.startswith("vendor/") else minified(path, text)).rstrip()
        for source, path, text in zip(sources, paths, (Path(p).read_bytes() for p in paths), strict=True)
    ]
    at = [plain.index(text) for text in sent]
    assert at == sorted(at) and sources.index("vendor/htmx.min.js") == len([s for s in sources if s.startswith("js/")])
    assert b"\n//" not in plain.split(sent[sources.index("vendor/htmx.min.js")])[0]
    hashed = _get(client, f"/assets/room.js?v={current.digest}")
    assert hashed.headers["Content-Encoding"] == "br"
    assert brotli.decompress(hashed.get_data()) == plain
    assert "immutable" in hashed.headers["Cache-Control"] and "max-age=31536000" in hashed.headers["Cache-Control"]
    assert "ETag" not in hashed.headers  # named by its hash: never revalidated, so no validator either
    stale = _get(client, "/assets/room.js?v=old")
    assert "no-cache" in stale.headers["Cache-Control"]
    revalidate = {"Accept-Encoding": "br", "If-None-Match": stale.headers["ETag"]}
    again = client.get("/assets/room.js?v=old", headers=revalidate)
    assert again.status_code == 304
    assert client.get("/assets/other.js").status_code == 404


# -- the compression side channel (BREACH): CSRF tokens are masked per response ----------------------------

TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')
FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.mark.once
def test_csrf_tokens_never_repeat_so_compression_cannot_reveal_them(client):
    """Issue 11: putting the token's first characters into ``next=`` shrank the compressed sign-in page, because
    the token was the same in every response. Now every response masks it afresh (one pad per response, so
    the copies inside one page compress together): no two responses share even their first characters, yet
    each one works."""
    pages = [brotli.decompress(_get(client, "/login?next=/rooms/").get_data()).decode() for _ in range(5)]
    per_page = [set(TOKEN.findall(page) + FIELD.findall(page)) for page in pages]
    assert all(len(found) == 1 for found in per_page)  # one masked value per response, however many copies
    tokens = [found.pop() for found in per_page]
    assert len({t[:8] for t in tokens}) == len(tokens)  # random pads: a repeat is a ~2^-48 chance
    for token in (tokens[0], tokens[-1]):
        response = client.post("/theme", data={"csrf_token": token, "theme": "dark", "next": "/"})
        assert response.status_code == 303
        response = client.post("/theme", headers={"X-CSRFToken": token}, data={"theme": "light", "next": "/"})
        assert response.status_code == 303
    assert client.post("/theme", data={"csrf_token": tokens[0][:-2] + "AA", "theme": "dark"}).status_code == 400


@pytest.mark.once
def test_mask_round_trip_and_foreign_values():
    from chatroom.csrf_masking import mask, unmask

    token = "ImFiYyI.aBcDeF.signature-part_1"
    masked = {mask(token) for _ in range(20)}
    assert len(masked) == 20 and all(unmask(m) == token for m in masked)
    assert all("." not in m and "=" not in m for m in masked)
    for foreign in ("", "abc", "!!!", token, "AAAA"):
        assert isinstance(unmask(foreign), str)
    assert unmask(token) == token


def test_slim_drops_comments_and_indentation_only():
    from chatroom.assets import slim

    source = b'// about\n(() => {\n  "use strict";\n\n  // why\n  const a = "//x"; // gone\n  f("a // b");\n})();\n'
    assert slim(source) == b'(() => {\n"use strict";\nconst a = "//x";\nf("a // b");\n})();'
