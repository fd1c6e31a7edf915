"""Text that behaves (issue 10, docs/text.md): the rules of ``chatroom/text.py`` and every field that uses them.

Kinds: 1 nothing visible is nothing, 2 count what the user sees, 3 layout is safe (marks capped; the CSS
clip is in tests/test_text_browser.py), 4 direction (markup here, positions in the browser test),
5 look-alike names, 6 whitespace means something, 8 exports that open right.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import secrets
import unicodedata
from html.parser import HTMLParser

import pytest
import regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from werkzeug.http import parse_options_header

from chatroom.extensions import db
from chatroom.models import Membership, Message, Report, Room
from chatroom.services import Invalid, accounts, export, members, messages, moderation, rooms
from chatroom.text import (
    MARKS_MAX,
    cap_marks,
    clean_body,
    clean_line,
    key_of,
    length,
    name_skeleton,
    skeleton,
    truncate,
    valid_email,
    visible,
)
from support.clients import Client
from support.constants import PASSWORD, ROOM_PASSWORD

once = pytest.mark.once  # pure rules: they do not depend on the backend
PROPERTY = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# -- the basics, as before -------------------------------------------------------------------------------


@once
def test_clean_line_removes_invisible_and_control_characters():
    assert clean_line("  Pat\u200b \u202eRLO\u0007  ") == "Pat RLO"
    assert clean_line("\u200b\u200d") == ""


@once
def test_key_folds_case_and_width():
    assert key_of("HOST") == key_of("host") == key_of("ｈｏｓｔ")
    assert key_of("Straße") == key_of("STRASSE")


@once
def test_body_keeps_line_breaks_and_drops_controls():
    # Leading indentation stays (issue 10, kind 6): only trailing space and blank end lines go.
    assert clean_body("  a\r\nb\rc\x00d  ") == "  a\nb\ncd"


@once
def test_email_shape():
    assert valid_email("a@b.org")
    assert not valid_email("a@b")
    assert not valid_email("a b@c.org")


# -- kind 1: nothing visible is nothing -------------------------------------------------------------------

INVISIBLE = [
    "\u200b",  # zero-width space
    "\ufeff",  # byte-order mark / zero-width no-break space
    "\u200b\u200c\u200d\u2060",  # joiners and word joiner
    "\u3164",  # Hangul filler
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\uffa0",  # half-width Hangul filler
    "\u2800",  # braille pattern blank
    "\U0001d159",  # musical symbol null notehead
    "\ufe0f\ufe0e",  # variation selectors alone
    "\u0301\u0308",  # combining marks with no letter
    "\u00a0\u2003\u3000\u205f",  # no-break, em, ideographic and mathematical spaces
    "\u180e\u00ad",  # Mongolian vowel separator, soft hyphen
    "\U000e0041\U000e007f",  # tag characters
    "\u2028\u2029",  # line and paragraph separators
    "\u202e\u2066",  # bidi controls
    " \t ",
]
# Characters that draw nothing; any mix of them must be refused.
BLANK_ALPHABET = st.sampled_from(sorted(set("".join(INVISIBLE)) | {"\u034f", "\u061c", "\u17b5", "\U0001d173"}))


@once
@pytest.mark.parametrize("text", INVISIBLE)
def test_invisible_text_is_not_visible(text):
    assert not visible(text)
    assert not visible(clean_body(text)) and not visible(clean_line(text))


@once
@pytest.mark.parametrize("text", ["a", "é", "😀", "中", "١", "\u0915\u094d", "·", "_", "\U0001f1eb\U0001f1f7"])
def test_any_letter_digit_symbol_or_emoji_is_visible(text):
    assert visible(text)


@once
@PROPERTY
@given(st.lists(BLANK_ALPHABET, min_size=1, max_size=12).map("".join))
def test_no_mix_of_blank_characters_is_visible(text):
    assert not visible(clean_body(text)) and not visible(clean_line(text))


@once
@PROPERTY
@given(st.text(max_size=30), st.characters(categories=["Lu", "Ll", "Lo", "Nd"]), st.text(max_size=30))
def test_text_with_a_letter_or_digit_stays_visible_after_cleaning(before, letter, after):
    text = before + letter + after
    assert visible(text)
    # A letter can only be lost by NFKC turning it into something else visible, never into nothing.
    assert visible(clean_body(text)) and (visible(clean_line(text)) or not clean_line(letter))


def _refusal(call):
    with pytest.raises(Invalid) as refused:
        call()
    return refused.value


@pytest.mark.parametrize("text", ["\u200b", "\ufeff\u200d", "\u3164", "\u2800", "\u0301", "\ufe0f"])
def test_every_field_refuses_text_with_nothing_visible(app, make_room, seat, text):
    """Message, alias, room title, facilitator name and report reason: one rule, one kind of message."""
    room = make_room()
    pat, kim = seat(room, "Pat"), seat(room, "Kim")
    with app.test_request_context():
        pat_row, kim_row = db.session.get(Membership, pat.id), db.session.get(Membership, kim.id)
        posted, _ = messages.post(kim_row, "hello", secrets.token_hex(16))
        refusals = {
            "body": _refusal(lambda: messages.post(pat_row, text, secrets.token_hex(16))),
            "alias": _refusal(lambda: members.join(db.session.get(Room, room.id), text, ROOM_PASSWORD)),
            "title": _refusal(lambda: rooms.parse_form({"title": text, "password": "secret!"}, editing=False)),
            "name": _refusal(lambda: accounts.sign_up("blank@example.org", text, PASSWORD)),
            "reason": _refusal(lambda: moderation.report(pat_row, posted, text)),
        }
        for field, refused in refusals.items():
            assert refused.status == 422
            assert "no visible characters" in refused.errors[field], (field, refused.errors)
        assert db.session.query(Message).filter_by(membership_id=pat.id).count() == 0
        assert db.session.query(Report).count() == 0


def test_a_blank_message_is_refused_over_http(app, make_room, join):
    room = make_room()
    pat = join(room)
    page = pat.form(f"/r/{room.code}/messages", {"body": "\u200b\ufeff", "token": secrets.token_hex(16)})
    assert page.status_code == 422 and "no visible characters" in page.get_data(as_text=True)
    app.test_client_class = Client
    blank = app.test_client().form(f"/r/{room.code}/join", {"alias": "\u3164", "password": ROOM_PASSWORD})
    assert blank.status_code == 422 and "no visible characters" in blank.get_data(as_text=True)


def test_an_empty_reason_is_still_fine(app, make_room, seat):
    room = make_room()
    pat, kim = seat(room, "Pat"), seat(room, "Kim")
    with app.test_request_context():
        posted, _ = messages.post(db.session.get(Membership, kim.id), "hello", secrets.token_hex(16))
        report = moderation.report(db.session.get(Membership, pat.id), posted, "  ")
        assert report.reason == ""


# -- kind 2: count what the user sees ---------------------------------------------------------------------

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"  # one emoji of 7 code points


@once
def test_length_counts_grapheme_clusters():
    assert length("a" * 1995 + FAMILY) == 1996
    assert length("e\u0301") == 1 and length("\U0001f1eb\U0001f1f7\U0001f1e9\U0001f1ea") == 2  # two flags
    assert length("\u0915\u094d\u0937\u093f") == 1  # क्षि, one akshara
    assert truncate("e\u0301" + FAMILY + "xyz", 2) == "e\u0301" + FAMILY


# Clusters that stay whole side by side: each counts as one character.
CLUSTER = st.sampled_from(
    [
        *("a", "é", "e\u0301", FAMILY, "\U0001f1eb\U0001f1f7", "\U0001f44d\U0001f3fd", "1\ufe0f\u20e3"),
        *("\u1100\u1161\u11a8", "中", "\u0915\u093f", "\u05e9\u05c1\u05b8", " ", "\n"),
    ]
)


@once
@PROPERTY
@given(st.lists(CLUSTER, max_size=40))
def test_length_is_the_number_of_characters_a_reader_sees(clusters):
    text = "".join(clusters)
    assert length(text) == len(clusters)
    assert length(unicodedata.normalize("NFC", text)) == length(unicodedata.normalize("NFD", text)) == len(clusters)


def test_limits_count_characters_as_seen_and_say_so(app, make_room, seat):
    room = make_room()
    pat = seat(room, "Pat")
    with app.test_request_context():
        me = db.session.get(Membership, pat.id)
        family, _ = messages.post(me, "a" * 1995 + FAMILY, secrets.token_hex(16))
        accent, _ = messages.post(me, "a" * 1999 + "e\u0301", secrets.token_hex(16))
        assert family.body == "a" * 1995 + FAMILY
        assert accent.body == "a" * 1999 + "é"  # stored as NFC
        refused = _refusal(lambda: messages.post(me, "x" * 2013, secrets.token_hex(16)))
        assert refused.errors["body"] == "Shorten your message to 2,000 characters or fewer (it has 2,013)"
        alias = members.join(db.session.get(Room, room.id), "Dad " + "\U0001f44d\U0001f3fd" * 28, ROOM_PASSWORD)
        assert length(alias.alias) == 32 and len(alias.alias) > 32
        too_long = _refusal(lambda: members.join(db.session.get(Room, room.id), "x" * 33, ROOM_PASSWORD))
        assert too_long.errors["alias"] == "Choose an alias of 1 to 32 characters (it has 33)"
        title = _refusal(lambda: rooms.parse_form({"title": "t" * 121, "password": "secret!"}, editing=False))
        assert title.errors["title"] == "Enter a title of 1 to 120 characters (it has 121)"
        name = _refusal(lambda: accounts.sign_up("long@example.org", "n" * 65, PASSWORD))
        assert name.errors["name"] == "Enter your name, up to 64 characters (it has 65)"
        posted, _ = messages.post(db.session.get(Membership, seat(room, "Kim").id), "hi", secrets.token_hex(16))
        reason = _refusal(lambda: moderation.report(me, posted, "r" * 501))
        assert reason.errors["reason"] == "Shorten the reason to 500 characters or fewer (it has 501)"


def test_a_name_too_big_for_its_column_gets_a_sentence_not_an_error(app):
    """Columns hold code points: 50 Devanagari conjuncts (क्ष) are 50 characters but 150 code points."""
    with app.test_request_context():
        refused = _refusal(lambda: rooms.parse_form({"title": "\u0915\u094d\u0937" * 50}, editing=False))
    assert "its 50 characters are built from 150 parts" in refused.errors["title"]
    assert "at most 120 fit: shorten it" in refused.errors["title"]


def test_a_host_alias_cut_from_a_long_name_keeps_whole_characters(app, make_facilitator, make_room):
    owner = make_facilitator(name="a" * 31 + "\U0001f1eb\U0001f1f7b")  # a flag is two code points
    room = make_room(owner=owner)
    with app.app_context():
        host = db.session.query(Membership).filter_by(room_id=room.id, is_host=True).one()
        assert host.alias == "a" * 31 + "\U0001f1eb\U0001f1f7"


# -- kind 3: layout is safe from any text (marks capped on input) ----------------------------------------

ZALGO = "".join(ch + "\u0336\u0301\u0302\u0303\u0304\u0305\u0306\u0307\u0308\u0309\u030a\u030b" * 4 for ch in "zalgo")
REAL_TEXT = [
    "Tiếng Việt có dấu",  # Vietnamese: two marks on a letter (NFC composes most)
    "क्षत्रिय संस्कृतम्",  # Devanagari conjuncts
    "שָׁלוֹם בְּרֵאשִׁית",  # pointed Hebrew
    "\u05d1\u05bc\u05b0\u05bd\u0591",  # bet with dagesh, sheva, meteg and an accent: four marks
    "น้ำ ที่",  # Thai tone marks
    "مُحَمَّدٌ",  # Arabic with harakat
    "བསྒྲུབས",  # Tibetan stack
    "1\ufe0f\u20e3 \U0001f44d\U0001f3fd " + FAMILY,  # keycap, skin tone, ZWJ sequence
]


def _mark_runs(text: str) -> list[str]:
    return regex.findall(r"[\p{Mn}\p{Me}]+", text)


@once
def test_zalgo_keeps_at_most_four_marks_per_letter():
    cleaned = clean_body(ZALGO)
    assert max(len(run) for run in _mark_runs(cleaned)) == MARKS_MAX
    assert length(cleaned) == 5  # still "zalgo", each letter with its first marks
    assert max(len(run) for run in _mark_runs(clean_line(ZALGO))) <= MARKS_MAX


@once
@pytest.mark.parametrize("text", REAL_TEXT)
def test_real_writing_is_untouched(text):
    assert clean_body(text) == unicodedata.normalize("NFC", text)


@once
@PROPERTY
@given(st.text(alphabet=st.characters(categories=["L", "Mn", "Me", "Zs", "Nd"]), max_size=60))
@example("a\u0301\u0301\u0301")
@example("e" + "\u0301\u0300" * 10)
def test_no_cleaned_text_stacks_more_than_four_marks(text):
    for cleaned in (clean_body(text), clean_line(text)):
        for run in _mark_runs(cleaned):
            assert len(run) <= MARKS_MAX, (text, cleaned)
            assert all(a != b for a, b in itertools.pairwise(run))
        assert cap_marks(cleaned) == cleaned


def test_a_zalgo_message_is_stored_capped(app, make_room, seat):
    room = make_room()
    pat = seat(room)
    with app.test_request_context():
        message, _ = messages.post(db.session.get(Membership, pat.id), ZALGO, secrets.token_hex(16))
        assert max(len(run) for run in _mark_runs(message.body)) <= MARKS_MAX


# -- kind 4: direction (the markup; where things land is tests/test_text_browser.py) -------------------


def test_user_text_is_isolated_in_the_room(app, make_room, join):
    room = make_room(title="שיחה Planning")
    pat = join(room, "مريم")
    pat.form(f"/r/{room.code}/messages", {"body": "שלום לכולם", "token": secrets.token_hex(16)})
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    assert '<bdi class="message__alias">مريم</bdi>' in html
    assert '<p class="message__body" dir="auto">שלום לכולם</p>' in html
    assert "<h1><bdi>שיחה Planning</bdi></h1>" in html
    assert "you are <strong><bdi>مريم</bdi></strong>" in html


# -- kind 5: look-alike names ------------------------------------------------------------------------------


@once
def test_skeletons_follow_unicode_confusables():
    assert skeleton("paypal") == skeleton("\u0440\u0430\u0443\u0440\u0430l")  # Cyrillic р, а, у
    assert skeleton("m") == skeleton("rn") and skeleton("l") == skeleton("1") == skeleton("I")
    assert name_skeleton("Olive") == name_skeleton("\u039flive") == name_skeleton("\u03bf\u217cive")  # Ο, ⅼ
    assert name_skeleton("Ana") != name_skeleton("Ann")
    assert name_skeleton("Zoë") != name_skeleton("Zoe")


# Look-alikes of ASCII letters from Unicode's own data: every source character whose prototype is the letter.
def _look_alikes() -> dict[str, list[str]]:
    from chatroom.text import _prototypes

    found: dict[str, list[str]] = {}
    for source, target in _prototypes().items():
        if len(target) == 1 and target.isascii() and target.isalpha() and len(source) == 1:
            found.setdefault(target, []).append(source)
    return found


LOOK_ALIKES = _look_alikes()


@st.composite
def spoofed(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=12))
    spoof = "".join(draw(st.sampled_from([ch, *LOOK_ALIKES.get(ch, [])])) for ch in name)
    return name, spoof


@once
@PROPERTY
@given(spoofed())
def test_a_name_made_of_look_alike_letters_has_the_same_skeleton(pair):
    name, spoof = pair
    assert name_skeleton(spoof) == name_skeleton(name), f"{spoof!r} passes as {name!r}"


def test_an_alias_that_only_looks_like_an_active_one_is_refused(app, make_room, join):
    room = make_room()
    join(room, "Olive")
    app.test_client_class = Client
    newcomer = app.test_client()
    page = newcomer.form(f"/r/{room.code}/join", {"alias": "\u039flive", "password": ROOM_PASSWORD})  # Greek Ο
    assert page.status_code == 409
    assert "looks the same as this one" in page.get_data(as_text=True)
    assert newcomer.form(f"/r/{room.code}/join", {"alias": "Olivia", "password": ROOM_PASSWORD}).status_code == 303


def test_a_look_alike_of_someone_who_left_is_free(app, make_room, seat):
    room = make_room()
    olive = seat(room, "Olive")
    with app.test_request_context():
        members.leave(db.session.get(Membership, olive.id))
        seat_row = members.join(db.session.get(Room, room.id), "\u039flive", ROOM_PASSWORD)
        assert seat_row.alias == "\u039flive"


# -- kind 6: whitespace means something ---------------------------------------------------------------------


@once
@PROPERTY
@given(st.text(alphabet=st.sampled_from("ab \t\n\u3000\u00a0\u200b"), max_size=40))
@example("\n\n   indented\n\n\n  inner  spaces  \n\n")
def test_bodies_trim_only_line_ends_and_blank_end_lines(text):
    cleaned = clean_body(text)
    lines = cleaned.split("\n")
    assert all(line == line.rstrip() for line in lines)
    if cleaned:
        assert visible(lines[0]) and visible(lines[-1])
        # What is left is the original, with trailing space on each line dropped.
        kept = [line.rstrip() for line in text.split("\n")]
        assert "\n" + cleaned + "\n" in "\n" + "\n".join(kept) + "\n"
    assert clean_body(cleaned) == cleaned


def test_indentation_and_inner_spacing_survive_posting_and_showing(app, make_room, join):
    room = make_room()
    pat = join(room)
    body = "\n\n    def greet():\n        return  'hi'   \n\n\n  - two  spaces\n\n"
    pat.form(f"/r/{room.code}/messages", {"body": body, "token": secrets.token_hex(16)})
    with app.app_context():
        stored = db.session.query(Message).filter_by(room_id=room.id).one().body
    assert stored == "    def greet():\n        return  'hi'\n\n\n  - two  spaces"
    html = pat.get(f"/r/{room.code}").get_data(as_text=True)
    shown = "    def greet():\n        return  &#39;hi&#39;\n\n\n  - two  spaces"
    assert f'<p class="message__body" dir="auto">{shown}</p>' in html  # nothing added inside the element


# -- kind 8: exports that open right -------------------------------------------------------------------------

TRICKY = [
    "# not a heading",
    "1. not a list\n2) nor this\n- nor\n+ this\n* or this",
    "Setext?\n===\n---",
    "&amp; &#35; &copy; <b>bold</b> <!-- c --> <https://x.example>",
    "[link](https://x.example) ![img](y.png) [ref]: https://z.example",
    "*em* _em_ **strong** `code` ~~gone~~ | a | b |",
    "    four spaces of code\n\ttab\n  two",
    "back\\slash at the end\\",
    "> quoted\n>> twice",
    "```\nfenced\n```",
    "Café crème, 会議, مرحبا",
    "line\n\n\nafter blank lines",
]


class _ItemText(HTMLParser):
    """The text of each <li> of rendered HTML, with <br> as a line break; fails on any other markup inside."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.items: list[str] = []
        self.inside = False
        self.after_br = False
        self.foreign: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li":
            self.items.append("")
            self.inside = True
        elif self.inside and tag == "br":
            self.items[-1] += "\n"
            self.after_br = True
        elif self.inside and tag not in ("strong", "em"):
            self.foreign.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "li":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self.inside:
            if self.after_br and data.startswith("\n"):  # the renderer's own newline after <br />
                data = data[1:]
            self.after_br = False
            self.items[-1] += data


def _rendered_items(markdown: str) -> list[str]:
    parser = _ItemText()
    parser.feed(MarkdownIt("commonmark").render(markdown))
    assert parser.foreign == [], f"user text became markup: {parser.foreign}"
    return parser.items


@once
@pytest.mark.parametrize("body", TRICKY)
def test_markdown_renders_user_text_as_the_same_text(body):
    item = export.markdown_item("14:03", "Pat *the* [host]", host=True, body=body, edited=True)
    assert _rendered_items(item) == [f"14:03 Pat *the* [host] (host): {body} (edited)"]


MARKDOWN_ALPHABET = st.sampled_from([*"\\`*_{}[]()#+-.!|<>~&;:=\"'/ \t\n0123456789aZé", "&amp;", "\u00a0"])


@once
@PROPERTY
@given(st.lists(MARKDOWN_ALPHABET, min_size=1, max_size=50).map("".join).map(clean_body).filter(visible))
@example("1.\n2.")
@example("a\n    b")
def test_any_accepted_message_reads_the_same_in_the_markdown_transcript(body):
    assert _rendered_items(export.markdown_item("09:00", "Kim", host=False, body=body, edited=False)) == [
        f"09:00 Kim: {body}"
    ]


@once
@PROPERTY
@given(st.text(min_size=1, max_size=60).map(clean_body).filter(visible))
def test_any_accepted_message_comes_back_from_csv_and_json(body):
    buffer = io.StringIO()
    csv.writer(buffer).writerow([export._cell(body)])
    [[cell]] = list(csv.reader(io.StringIO(buffer.getvalue(), newline="")))
    assert cell == body or (cell == "'" + body and body[:1] in "=+-@\t\r")
    assert json.loads(json.dumps({"text": body}, ensure_ascii=False))["text"] == body


def _download(client, room, fmt):
    response = client.get(f"/rooms/{room.code}/transcript.{fmt}")
    try:
        return response.status_code, dict(response.headers), response.get_data()
    finally:
        response.close()


def test_downloads_open_right(app, signed_in, make_room, join):
    host, facilitator = signed_in()
    room = make_room(owner=facilitator, title="会議: Café/Plan")
    pat = join(room, "Zoë")
    for body in ["Café crème", '=HYPERLINK("x")', *TRICKY]:
        assert pat.form(f"/r/{room.code}/messages", {"body": body, "token": secrets.token_hex(16)}).status_code == 303
    with app.app_context():
        bodies = [m.body for m in db.session.query(Message).filter_by(room_id=room.id).order_by(Message.seq)]

    for fmt, content_type in export.TRANSCRIPT_FORMATS.items():
        status, headers, _ = _download(host, room, fmt)
        assert status == 200 and headers["Content-Type"] == content_type
        assert headers["Content-Type"].count("charset") == 1
        if fmt != "html":
            disposition = headers["Content-Disposition"]
            assert disposition.isascii()
            kind, options = parse_options_header(disposition)
            assert kind == "attachment" and options["filename"] == f"会議- Café-Plan-{room.code}.{fmt}"
            assert f'filename="Cafe-Plan-{room.code}.{fmt}"' in disposition  # the ASCII fallback

    _, _, raw = _download(host, room, "csv")
    assert raw.startswith(b"\xef\xbb\xbf")  # the byte-order mark spreadsheet programs look for
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [r["text"] for r in rows] == ["'" + b if b.startswith("=") else b for b in bodies]
    assert rows[0]["text"] == "Café crème" and rows[0]["alias"] == "Zoë"

    _, _, raw = _download(host, room, "md")
    items = _rendered_items(raw.decode())
    assert [item.split(" Zoë: ", 1)[1] for item in items] == bodies


def test_a_title_with_no_ascii_still_downloads_under_its_name(app, signed_in, make_room):
    host, facilitator = signed_in()
    room = make_room(owner=facilitator, title="تخطيط")
    _, headers, _ = _download(host, room, "json")
    assert parse_options_header(headers["Content-Disposition"])[1]["filename"] == f"تخطيط-{room.code}.json"
    assert f'filename="transcript-{room.code}.json"' in headers["Content-Disposition"]
