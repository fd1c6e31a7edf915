"""Our scripts as they are sent: minified by terser into ``static/js/min/`` (``make assets``), never stale."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chatroom.assets import BUNDLES, minified, slim

pytestmark = pytest.mark.once  # files on disk: the same on either backend

STATIC = Path(__file__).resolve().parent.parent / "static"
OURS = sorted({source for sources in BUNDLES.values() for source in sources if source.startswith("js/")})


@pytest.mark.parametrize("source", OURS)
def test_every_script_has_a_current_minified_form(source):
    """A script edited without ``make assets`` fails here (and is served slimmed, not stale, meanwhile)."""
    path = STATIC / source
    made = STATIC / "js" / "min" / path.name
    assert made.exists(), f"{made} is missing: run make assets"
    head = made.read_bytes().split(b"\n", 1)[0]
    assert head == f"/* sha256 {hashlib.sha256(path.read_bytes()).hexdigest()} */".encode(), "stale: run make assets"
    body = minified(str(path), path.read_bytes())
    assert body and b"\n" not in body.strip() and len(body) < len(slim(path.read_bytes()))


def test_a_minified_file_of_another_source_is_not_served(tmp_path):
    (tmp_path / "min").mkdir()
    source = tmp_path / "a.js"
    source.write_bytes(b'// about\n(() => {\n  "use strict";\n})();\n')
    (tmp_path / "min" / "a.js").write_bytes(b"/* sha256 " + b"0" * 64 + b' */\n(()=>{"use strict"})();\n')
    assert minified(str(source), source.read_bytes()) == slim(source.read_bytes())
    digest = hashlib.sha256(source.read_bytes()).hexdigest().encode()
    (tmp_path / "min" / "a.js").write_bytes(b"/* sha256 " + digest + b' */\n(()=>{"use strict"})();\n')
    assert minified(str(source), source.read_bytes()) == b'(()=>{"use strict"})();\n'
    assert minified(str(tmp_path / "b.js"), b"const b = 1; // x\n") == b"const b = 1;"
