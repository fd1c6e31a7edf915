"""Pure text rules: normalising aliases, titles, e-mail addresses and message bodies."""

from __future__ import annotations

import re
import unicodedata

# Characters that render as nothing or reorder text: never allowed in a name. Control characters, and
# Unicode's Default_Ignorable_Code_Point set (which holds the zero-width, bidi and tag characters).
_INVISIBLE = re.compile(
    "[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
_SPACES = re.compile(r"\s+")


def clean_line(value: str) -> str:
    """One line of user text: NFKC-normalised, invisible and control characters removed, spaces folded."""
    value = _INVISIBLE.sub("", unicodedata.normalize("NFKC", value))
    # Normalise again: a removed character may have kept two neighbours from composing ("e", ZWJ, U+0301).
    value = unicodedata.normalize("NFKC", value)
    return _SPACES.sub(" ", value).strip()


def key_of(value: str) -> str:
    """The comparison key of a name: case- and compatibility-folded, so 'HOST' and 'ｈｏｓｔ' collide."""
    return unicodedata.normalize("NFKC", clean_line(value).casefold())


def clean_body(value: str) -> str:
    """A message body: line breaks kept (as ``\\n``), other control characters dropped, ends trimmed."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = "".join(ch for ch in value if ch == "\n" or ch == "\t" or unicodedata.category(ch) != "Cc")
    value = re.sub("[\u202a-\u202e\u2066-\u2069]", "", value)  # bidi overrides cannot leak past a message
    return value.strip()


_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")


def clean_email(value: str) -> str:
    """An address as typed, trimmed, without control characters (PostgreSQL refuses NUL in text)."""
    return _CONTROL.sub("", value).strip()


def is_number(value: str) -> bool:
    """Only ASCII digits: ``str.isdigit`` also accepts '²', which ``int`` then refuses."""
    return value.isascii() and value.isdigit()


def valid_email(value: str) -> bool:
    return (
        bool(re.fullmatch(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+", value)) and len(value) <= 254 and not _CONTROL.search(value)
    )
