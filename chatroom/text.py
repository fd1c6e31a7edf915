"""Pure text rules: what user text is accepted, how it is normalised and counted (docs/text.md).

Every field people type into (alias, message, room title, facilitator name, report reason) goes through
the same few rules here, and the services turn a broken rule into an :class:`~chatroom.services.Invalid`:

- **Nothing visible is nothing.** :func:`visible` is the one test of "did they write anything": format
  characters, fillers, blank-looking symbols, whitespace of every kind and marks without a letter do not count.
- **Count what the user sees.** Text is normalised (NFC for messages and reasons, NFKC for names and titles)
  and limits count grapheme clusters (:func:`length`, Unicode's user-perceived characters, UAX #29), so
  "é" typed as e + accent and a family emoji count as one each.
- **Layout is safe.** :func:`cap_marks` keeps at most :data:`MARKS_MAX` nonspacing marks in a row (the
  limit UTS #39 section 5.4 suggests), so "zalgo" text cannot stack marks far above and below its line.
- **Whitespace means something.** :func:`clean_body` keeps indentation and inner spacing; it trims only
  trailing space on each line and blank lines at either end.
- **Look-alike names.** :func:`skeleton` is Unicode's confusable skeleton (UTS #39 section 4), from the
  confusables.txt data shipped in ``chatroom/data``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import regex

# Characters that render as nothing or reorder text: never allowed in a name. Control characters, and
# Unicode's Default_Ignorable_Code_Point set (which holds the zero-width, bidi and tag characters).
_INVISIBLE = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff\ud800-\udfff]"
)
# Symbols that are assigned, printable characters yet draw nothing at all: braille pattern blank and the
# musical null notehead. (The Hangul fillers are Default_Ignorable, so the \p{DI} below already has them.)
BLANK_SYMBOLS = "\u2800\U0001d159"
# A visible character: anything but other (Cc, Cf, Cs, Co, Cn), separators (Z*), marks (a mark needs a
# letter to sit on), Default_Ignorable_Code_Point (fillers, variation selectors, joiners), white space and
# the blank symbols. Private-use characters draw only with a font the reader is unlikely to have.
_VISIBLE = regex.compile(rf"[^\p{{C}}\p{{Z}}\p{{M}}\p{{DI}}\p{{White_Space}}{BLANK_SYMBOLS}]")
_GRAPHEME = regex.compile(r"\X")
_SPACES = re.compile(rf"[\s{BLANK_SYMBOLS}]+")
# Nonspacing (Mn) and enclosing (Me) marks stack above and below their letter; spacing marks (Mc) advance
# along the line like letters, so they cannot paint over the lines around them.
_MARK_RUN = regex.compile(r"[\p{Mn}\p{Me}]{2,}")
_LINE_BREAKS = re.compile("\r\n|[\r\u000b\u000c\u0085\u2028\u2029]")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")

# At most this many nonspacing marks in a row: UTS #39 (Unicode Security Mechanisms) section 5.4 suggests
# forbidding "sequences of more than 4 nonspacing marks", and no orthography needs more (Vietnamese needs 2,
# pointed and cantillated Hebrew 4). Unicode's own outer bound, the Stream-Safe Text Format of UAX #15,
# is 30 non-starters; past a handful, marks only serve to paint over the neighbouring lines ("zalgo").
MARKS_MAX = 4


def visible(value: str) -> bool:
    """Whether ``value`` has at least one character a reader can see (the rule for every field)."""
    return _VISIBLE.search(value) is not None


def length(value: str) -> int:
    """How many characters a reader sees: extended grapheme clusters (UAX #29), not code points."""
    return sum(1 for _ in _GRAPHEME.finditer(value))


def truncate(value: str, limit: int) -> str:
    """The first ``limit`` user-perceived characters of ``value`` (never half a character)."""
    return "".join(m.group() for _, m in zip(range(limit), _GRAPHEME.finditer(value), strict=False))


def cap_marks(value: str) -> str:
    """Keep at most :data:`MARKS_MAX` nonspacing marks in a row, and never the same mark twice in a row.

    Both rules are UTS #39 section 5.4's optional detections; the extra marks are dropped, not refused.
    """

    def trim(match: regex.Match[str]) -> str:
        kept: list[str] = []
        for mark in match.group():
            if kept and mark == kept[-1]:
                continue
            if len(kept) == MARKS_MAX:
                break
            kept.append(mark)
        return "".join(kept)

    return _MARK_RUN.sub(trim, value)


def _settle(value: str, step: Callable[[str], str]) -> str:
    """Apply ``step`` until the text stops changing (removing a character can let its neighbours compose)."""
    for _ in range(4):
        changed = step(value)
        if changed == value:
            break
        value = changed
    return value


def clean_line(value: str) -> str:
    """One line of user text (alias, title, name): NFKC, invisible and control characters removed, marks
    capped, runs of spaces and blank symbols folded to one space, ends trimmed.

    Names keep NFKC (not just NFC) because its compatibility forms are "fonts" made of characters:
    mathematical bold or full-width letters read as gibberish to a screen reader and make look-alikes.
    """

    def step(text: str) -> str:
        text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
        text = unicodedata.normalize("NFKC", cap_marks(text))
        return _SPACES.sub(" ", text).strip()

    return _settle(value, step)


def key_of(value: str) -> str:
    """The comparison key of a name: case- and compatibility-folded, so 'HOST' and 'ｈｏｓｔ' collide."""
    return unicodedata.normalize("NFKC", clean_line(value).casefold())


def clean_body(value: str) -> str:
    """A message body or report reason: NFC, line breaks kept (as ``\\n``), other control characters and
    bidi overrides dropped, marks capped; indentation and inner spaces kept, trailing space on each line
    and blank lines at either end trimmed. A line with nothing visible counts as blank.
    """
    value = _LINE_BREAKS.sub("\n", value)
    value = "".join(ch for ch in value if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
    value = _BIDI_CONTROLS.sub("", value)  # bidi overrides cannot leak past a message

    def step(text: str) -> str:
        return unicodedata.normalize("NFC", cap_marks(unicodedata.normalize("NFC", text)))

    lines = [line.rstrip() for line in _settle(value, step).split("\n")]
    while lines and not visible(lines[0]):
        lines.pop(0)
    while lines and not visible(lines[-1]):
        lines.pop()
    return "\n".join(lines)


@dataclass(frozen=True)
class Limit:
    """A field's rules in words: the refusals a service raises, filled in by :func:`problem`.

    ``too_long`` may use ``{maximum}`` and ``{count}``; ``storage`` is how many code points the column holds
    (a character can be made of several), when there is such a bound.
    """

    label: str  # "Your message", "The alias": the start of a sentence
    maximum: int
    empty: str  # nothing was typed
    too_long: str
    storage: int | None = None


def problem(raw: str, cleaned: str, limit: Limit, *, optional: bool = False, key: str = "") -> str | None:
    """What is wrong with a field, as a sentence for the person who typed it, or None.

    ``raw`` is what was sent, ``cleaned`` what :func:`clean_line` or :func:`clean_body` made of it. An
    ``optional`` field may be left empty, but not filled with only invisible characters. ``key``, when the
    field is stored with a comparison key (:func:`key_of`), must fit the storage bound too.
    """
    if not visible(cleaned):
        if not raw.strip() and not cleaned:
            return None if optional else limit.empty
        return f"{limit.label} has no visible characters (only spaces or invisible ones): " + (
            "leave it empty or write something" if optional else "write something others can read"
        )
    count = length(cleaned)
    if count > limit.maximum:
        return limit.too_long.format(maximum=f"{limit.maximum:,}", count=f"{count:,}")
    parts = max(len(cleaned), len(key))
    if limit.storage is not None and parts > limit.storage:
        return (
            f"{limit.label} is too long to keep: its {count:,} characters are built from {parts:,} parts "
            f"(accents, joined emoji), and at most {limit.storage:,} fit: shorten it"
        )
    return None


@cache
def _prototypes() -> dict[str, str]:
    """Unicode's confusables.txt (UTS #39): each source character -> its prototype string."""
    table: dict[str, str] = {}
    path = Path(__file__).with_name("data") / "confusables.txt"
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) < 3:
            continue
        source, target = ("".join(chr(int(code, 16)) for code in fields[i].split()) for i in (0, 1))
        table[source] = target
    return table


def skeleton(value: str) -> str:
    """The confusable skeleton of ``value`` (UTS #39 section 4): two strings that look alike share it.

    NFD, drop Default_Ignorable_Code_Point characters, map each character to its prototype, NFD again.
    """
    table = _prototypes()
    text = regex.sub(r"\p{DI}", "", unicodedata.normalize("NFD", value))
    return unicodedata.normalize("NFD", "".join(table.get(ch, ch) for ch in text))


@lru_cache(maxsize=65_536)  # a join compares with every active alias in the room: the same names each time
def name_skeleton(value: str) -> str:
    """The look-alike key of a name: alike in shape (:func:`skeleton`) or in case and width (:func:`key_of`).

    The skeleton comes first, so a capital that looks like another letter ("I" like "l") is read as that
    letter before case is folded, and again last, so the result is a skeleton.
    """
    return skeleton(key_of(skeleton(value)))


_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")


def clean_email(value: str) -> str:
    """An address as typed, trimmed, without control characters (PostgreSQL refuses NUL in text)."""
    return _CONTROL.sub("", value).strip()


def is_number(value: str) -> bool:
    """Only ASCII digits: ``str.isdigit`` also accepts '²', which ``int`` then refuses."""
    return value.isascii() and value.isdigit()


def valid_email(value: str) -> bool:
    """Whether ``value`` looks like an address: one @, no spaces, a dot in the domain, at most 254 long."""
    return (
        bool(re.fullmatch(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+", value)) and len(value) <= 254 and not _CONTROL.search(value)
    )


def seconds_phrase(seconds: int) -> str:
    """``seconds`` in words, as a screen reader says them well: "1 second", "42 seconds" (not "42 s")."""
    return f"{seconds} second{'' if seconds == 1 else 's'}"
