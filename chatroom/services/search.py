"""Search in a room: one function, PostgreSQL full-text search or SQLite FTS5 underneath.

PostgreSQL: a GIN index on ``to_tsvector(search_config, body)`` (migration 0007). Each message keeps
the text search configuration it was written under (the room's ``search_language``, ``simple`` by
default: no stemming, no stop words, right for any language), and the words are matched with
``websearch_to_tsquery`` in the room's configuration (quoted phrases, ``or``, ``-word``).

SQLite (the embedded default): an FTS5 table over ``messages.body`` kept by triggers, with the
``unicode61`` tokenizer (case and diacritics folded, like ``simple``). The words become a query of
quoted terms, all required, so nothing a person types is FTS5 syntax; whole words, as PostgreSQL
matches them, so both backends find the same messages.

Either way only the room's visible messages are found: never another room's, never a held,
rejected or removed one (a removed message's text is gone anyway).
"""

from __future__ import annotations

import re

from sqlalchemy import Select, cast, func, select, text
from sqlalchemy.dialects.postgresql import REGCONFIG

from ..extensions import db
from ..models import Membership, Message, MessageStatus, Room
from . import Invalid

QUERY_MAX = 200
RESULTS = 50
# The room's search language: a PostgreSQL text search configuration, from this fixed list only (the room form's
# select, and the API's ``search_language``). "simple" (the default) has no stemming and no stop words.
LANGUAGE_NAMES = {
    "simple": "Any language (whole words, no stemming)",
    "english": "English",
    "french": "French",
    "german": "German",
    "spanish": "Spanish",
    "italian": "Italian",
    "dutch": "Dutch",
    "portuguese": "Portuguese",
}
LANGUAGES = tuple(LANGUAGE_NAMES)
DEFAULT_LANGUAGE = "simple"
_WORD = re.compile(r"\w+", re.UNICODE)


def _visible(room: Room) -> Select[Message]:
    return select(Message).where(
        Message.room_id == room.id, Message.status == MessageStatus.PUBLISHED.value, Message.removed_at.is_(None)
    )


def search(room: Room, words: str, author: Membership | None = None, limit: int = RESULTS) -> list[Message]:
    """The room's visible messages that contain ``words`` (all of them), newest first, at most ``limit``.

    ``author``: only that seat's messages (and ``words`` may then be empty: all of theirs).
    :raise Invalid 422: no words to look for, or too long a query.
    """
    words = words.strip()
    if len(words) > QUERY_MAX:
        raise Invalid({"q": f"Shorten your search to {QUERY_MAX} characters or fewer"})
    terms = _WORD.findall(words)
    if not terms and author is None:
        raise Invalid({"q": "Type a word to look for"})
    query = _visible(room)
    if author is not None:
        query = query.where(Message.membership_id == author.id)
    if terms:
        if db.engine.dialect.name == "postgresql":
            language = room.search_language if room.search_language in LANGUAGES else "simple"
            vector = func.to_tsvector(Message.search_config, Message.body)
            query = query.where(vector.op("@@")(func.websearch_to_tsquery(cast(language, REGCONFIG), words)))
        else:
            match = " ".join('"' + term + '"' for term in terms)
            ids = text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :match").bindparams(match=match)
            query = query.where(Message.id.in_(ids))
    return list(db.session.scalars(query.order_by(Message.seq.desc()).limit(limit)))
