"""Properties, checked on generated input (hypothesis): SSE framing and name normalisation.

SSE: the browser is the judge, so frames are read back with ``spec_parse``, an
independent reading of the WHATWG event-stream rules (not ``chatroom.sse.parse``).
Those rules break lines on CR, LF and CRLF only; U+2028, U+2029 and U+0085 are
ordinary characters inside an event's data and must come through unchanged.

Names: ``clean_line`` makes an alias or title safe to show (no control, invisible or
reordering characters) and ``key_of`` decides when two names collide, so that nobody
can take a name that looks like the host's by changing case or width.
"""

from __future__ import annotations

import re
import string
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chatroom.sse import comment, cursor, frame, parse
from chatroom.text import clean_body, clean_line, key_of

pytestmark = pytest.mark.once  # properties of pure functions: the same on either backend (tests/run.sh)

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# -- an independent SSE parser, after https://html.spec.whatwg.org/multipage/server-sent-events.html ------


def spec_parse(stream: bytes) -> tuple[list[dict[str, str]], str]:
    """Events as a browser dispatches them (type, data, lastEventId), and the last event id it would send back."""
    text = stream.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    events: list[dict[str, str]] = []
    data, event_type, last_id = "", "", ""
    lines = re.split(r"\r\n|\r|\n", text)
    for line in lines[:-1]:  # the part after the last line break is an incomplete line: ignored
        if line == "":
            if data:
                events.append({"type": event_type or "message", "data": data[:-1], "lastEventId": last_id})
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id" and "\x00" not in value:
            last_id = value
        # retry and unknown fields change no event
    return events, last_id


# Text that stresses line handling: every line ending the spec knows and the ones it does not.
LINE_NOISE = st.sampled_from(["\r", "\n", "\r\n", "\n\r", "\x00", "\u2028", "\u2029", "\u0085", ":", " ", "data: x"])
TEXT = st.lists(st.one_of(st.text(), LINE_NOISE), max_size=12).map("".join)
SAFE_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "_:.-", min_size=1, max_size=20)


def _spec_lines(text: str) -> str:
    return re.sub(r"\r\n|\r", "\n", text)


@PROPERTY
@given(TEXT)
@example("one\r\ntwo\rthree\nfour")
@example("\n\nid: 99\nevent: close\n\ndata: x")
@example("line\u2028separator\u0085next\u2029para")
def test_any_text_frames_as_exactly_one_event_with_that_data(text):
    events, _ = spec_parse(frame(text))
    assert events == [{"type": "message", "data": _spec_lines(text), "lastEventId": ""}]
    assert parse(frame(text)) == [{"data": _spec_lines(text)}]  # our own reader agrees


@PROPERTY
@given(TEXT, SAFE_TOKEN, SAFE_TOKEN)
def test_id_and_event_name_come_through_and_nothing_else(text, event_id, name):
    events, last_id = spec_parse(frame(text, id=event_id, event=name))
    assert events == [{"type": name, "data": _spec_lines(text), "lastEventId": event_id}]
    assert last_id == event_id
    assert parse(frame(text, id=event_id, event=name)) == [{"id": event_id, "event": name, "data": _spec_lines(text)}]


@PROPERTY
@given(st.lists(TEXT, min_size=1, max_size=5))
def test_frames_in_a_row_stay_separate_events(texts):
    events, _ = spec_parse(b"".join(frame(t) for t in texts))
    assert [e["data"] for e in events] == [_spec_lines(t) for t in texts]


@PROPERTY
@given(st.text())
@example("")
@example("a\nb")
def test_unsafe_ids_and_event_names_are_refused(value):
    if re.fullmatch(r"[A-Za-z0-9_:.-]+", value):
        assert frame("x", id=value, event=value)  # plain tokens are fine
        return
    with pytest.raises(ValueError):
        frame("x", id=value)
    with pytest.raises(ValueError):
        frame("x", event=value)
    with pytest.raises(ValueError):
        cursor(value)


@PROPERTY
@given(TEXT)
def test_a_comment_never_becomes_an_event_or_moves_the_cursor(text):
    events, last_id = spec_parse(comment(text) + frame("after"))
    assert events == [{"type": "message", "data": "after", "lastEventId": ""}]
    assert last_id == ""
    assert comment(text).count(b"\n") == 2 and b"\r" not in comment(text)


@PROPERTY
@given(SAFE_TOKEN)
def test_a_cursor_moves_last_event_id_without_an_event(event_id):
    events, last_id = spec_parse(cursor(event_id))
    assert events == [] and last_id == event_id


# -- names ------------------------------------------------------------------------------------------

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties): characters that render as nothing.
DEFAULT_IGNORABLE = [
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
]
BIDI_CONTROLS = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _invisible(ch: str) -> bool:
    code = ord(ch)
    return any(low <= code <= high for low, high in DEFAULT_IGNORABLE)


# Names as people (and attackers) type them: letters of many scripts, marks, spaces, and the nasty bits.
NASTY = st.sampled_from(
    [
        "\u200b",
        "\u200d",
        "\u202e",
        "\u2066",
        "\u00ad",
        "\ufeff",
        "\u0000",
        "\u0007",
        "\u0085",
        "\u2028",
        "\u3164",
        "\U000e0041",
        "\U0001d173",
        "\u0301",
        "\u00a0",
        "\t",
        "  ",
        "ﬁ",
        "Ⅻ",
    ]
)
NAME = st.lists(st.one_of(st.text(max_size=4), NASTY), max_size=10).map("".join)


@PROPERTY
@given(NAME)
@example("e\u200d\u0301")
@example("\u1100\u200b\u1161")
def test_clean_line_is_idempotent(value):
    once = clean_line(value)
    assert clean_line(once) == once


@PROPERTY
@given(NAME)
@example("Pat\U000e0041\U000e0042")  # tag characters: invisible
@example("Host\U0001d173")
def test_clean_line_leaves_nothing_invisible_controlling_or_reordering(value):
    cleaned = clean_line(value)
    for ch in cleaned:
        assert unicodedata.category(ch) not in ("Cc", "Zl", "Zp"), f"{ch!r} in {cleaned!r}"
        assert not _invisible(ch), f"invisible {ch!r} ({unicodedata.name(ch, '?')}) in {cleaned!r}"
        assert ch not in BIDI_CONTROLS
    assert cleaned == cleaned.strip() and "  " not in cleaned


@PROPERTY
@given(NAME)
def test_key_of_is_stable(value):
    key = key_of(value)
    assert key_of(key) == key
    assert key_of(clean_line(value)) == key


# Turn each character of an ASCII name into a look-alike that differs only in case or width
# (or a compatibility form: full-width, circled, mathematical letters; NFKC reads them all as ASCII).
def _variants(ch: str) -> list[str]:
    out = [ch, ch.upper(), ch.lower()]
    if "!" <= ch <= "~":
        out.append(chr(ord(ch) - 0x21 + 0xFF01))  # full-width
    if "A" <= ch <= "Z":
        out.append(chr(0x1D400 + ord(ch) - ord("A")))  # MATHEMATICAL BOLD CAPITAL
    if "a" <= ch <= "z":
        out += [chr(0x1D41A + ord(ch) - ord("a")), chr(0x24D0 + ord(ch) - ord("a"))]  # bold small, circled
    if ch == " ":
        out += ["\u00a0", "\u3000", "  ", " \u200b"]
    return out


HOST_NAME = st.text(alphabet=string.ascii_letters + string.digits + " .-'", min_size=1, max_size=24).filter(
    lambda s: s.strip()
)


@st.composite
def look_alike(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(HOST_NAME)
    return name, "".join(draw(st.sampled_from(_variants(ch))) for ch in name)


@PROPERTY
@given(look_alike())
@example(("Olive Owner", "ＯＬＩＶＥ\u3000ｏｗｎｅｒ"))
@example(("Host", "𝐇𝐨𝐬𝐭"))
@example(("Strasse", "STRAẞE"))  # capital sharp s folds to ss
def test_a_case_or_width_variant_of_a_name_collides_with_it(pair):
    name, variant = pair
    assert key_of(variant) == key_of(name), f"{variant!r} would pass as {name!r}"


@PROPERTY
@given(st.text())
def test_message_bodies_keep_no_control_or_bidi_override_characters(value):
    body = clean_body(value)
    assert "\r" not in body
    for ch in body:
        assert ch in "\n\t" or unicodedata.category(ch) != "Cc"
        assert ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    assert clean_body(body) == body
