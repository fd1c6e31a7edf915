"""Finding and rendering ``@alias`` mentions (chatroom/mentions.py): pure functions, no app."""

from __future__ import annotations

import pytest

from chatroom.mentions import decode, encode, find, render
from chatroom.text import key_of

pytestmark = pytest.mark.once

SEATS = {key_of(alias): n for n, alias in enumerate(["Pat", "Olive", "Olive Owner", "Zoë", "R2"], start=1)}


@pytest.mark.parametrize(
    ("body", "found"),
    [
        ("hi @Pat", [(1, 3, 7)]),
        ("@pat, @PAT! @ｐａｔ.", [(1, 0, 4), (1, 6, 10), (1, 12, 16)]),  # case and width folded
        ("@Olive Owner said", [(3, 0, 12)]),  # the longest name wins
        ("@Olive Ownership", [(2, 0, 6)]),  # ... but not in the middle of a word
        ("@Patrick and mail@pat.example", []),  # a longer word, an address
        ("@Zoë and @Zoe\u0308", [(4, 0, 4), (4, 9, 14)]),  # composed or not
        ("@R2-D2 @", [(5, 0, 3)]),
        ("@@Pat", [(1, 1, 5)]),
        ("no one", []),
    ],
)
def test_find(body, found):
    assert find(body, SEATS) == found


def test_spans_round_trip_and_render_escaped():
    body = "<b>@Pat</b> & @Olive"
    spans = find(body, SEATS)
    assert list(decode(encode(spans))) == spans
    html = render(body, encode(spans), "/r/x/search?by={member}")
    assert html == (
        '&lt;b&gt;<a class="mention" data-member="1" href="/r/x/search?by=1">@Pat</a>&lt;/b&gt; &amp; '
        '<a class="mention" data-member="2" href="/r/x/search?by=2">@Olive</a>'
    )
    assert render("changed text", "1:0:4 x:y 9:1:999") == "changed text"  # stale or malformed spans are ignored
