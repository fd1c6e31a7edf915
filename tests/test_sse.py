"""SSE framing: no text can add an event or a field."""

from __future__ import annotations

import pytest

from chatroom.sse import comment, frame, parse

pytestmark = pytest.mark.once  # pure SSE framing: the same on either backend (tests/run.sh)


def test_frame_with_id_and_event():
    assert frame("hello", id=7, event="typing") == b"id: 7\nevent: typing\ndata: hello\n\n"


@pytest.mark.parametrize("text", ["a\nb", "a\rb", "a\r\nb", "\n\nid: 99\nevent: close\n\ndata: x", "x\r\r\ny"])
def test_line_breaks_in_data_cannot_escape_the_data_field(text):
    events = parse(frame(text, id=3))
    assert len(events) == 1
    assert events[0]["id"] == "3"
    assert "event" not in events[0]


def test_data_round_trips_with_normalised_line_breaks():
    assert parse(frame("one\r\ntwo\rthree\nfour"))[0]["data"] == "one\ntwo\nthree\nfour"


def test_event_names_must_be_plain():
    with pytest.raises(ValueError):
        frame("x", event="bad\nname")


def test_comment_is_a_single_line():
    assert comment("a\nb") == b": a b\n\n"
    assert parse(comment("a\ndata: x")) == []
