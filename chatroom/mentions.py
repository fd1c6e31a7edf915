"""Mentions: ``@alias`` of someone in the room, found once when a message is written and kept as spans.

Finding follows the alias rules (``text.key_of``: case, width and compatibility folded, and whatever
else the alias rules fold, such as confusables), so ``@ＰＡＴ`` mentions Pat. The longest alias that
matches wins (``@Olive Owner`` is not ``@Olive`` when both are in the room), and a mention must end
where a word ends. Spans are stored as ``member:start:end`` (``Message.mentions``) so that rendering
needs no lookup and every reader gets the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from markupsafe import Markup, escape

from .text import key_of

ALIAS_MAX = 64


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def find(body: str, members: Mapping[str, int]) -> list[tuple[int, int, int]]:
    """The mentions in ``body``: (member id, start, end) of each ``@alias``, ``end`` exclusive.

    ``members`` maps alias keys (``key_of``) to membership ids: the room's active seats.
    """
    found: list[tuple[int, int, int]] = []
    if not members:
        return found
    longest = min(ALIAS_MAX, max(len(key) for key in members) + 8)  # folding may shorten a name a little
    at = body.find("@")
    while at >= 0:
        end = 0
        if at == 0 or not _word(body[at - 1]):
            for length in range(min(longest, len(body) - at - 1), 0, -1):
                stop = at + 1 + length
                if stop < len(body) and _word(body[stop]) and _word(body[stop - 1]):
                    continue  # it would end in the middle of a word
                member = members.get(key_of(body[at + 1 : stop]))
                if member is not None and body[at + 1 : stop].strip() == body[at + 1 : stop]:
                    found.append((member, at, stop))
                    end = stop
                    break
        at = body.find("@", max(end, at + 1))
    return found


def encode(spans: list[tuple[int, int, int]]) -> str:
    """Spans as ``Message.mentions`` keeps them."""
    return " ".join(f"{member}:{start}:{end}" for member, start, end in spans)


def decode(stored: str) -> Iterator[tuple[int, int, int]]:
    """What ``encode`` wrote; anything malformed is skipped."""
    for part in stored.split():
        pieces = part.split(":")
        if len(pieces) == 3 and all(p.isdigit() for p in pieces):
            member, start, end = (int(p) for p in pieces)
            yield member, start, end


def render(body: str, stored: str, link: str = "", plain: Callable[[str], Markup] = escape) -> Markup:
    """``body`` as HTML with each mention marked: ``<a class="mention" data-member=…>@Pat</a>``.

    ``link`` is the address a mention points to, with ``{member}`` for the seat (their messages
    in the room's search); ``plain`` turns the text between mentions into HTML (escaping it
    completely: ``escape``, or ``links.linkify``, which also makes its addresses links).
    """
    out: list[Markup] = []
    last = 0
    tag = Markup('<a class="mention" data-member="{}" href="{}">{}</a>')
    for member, start, end in sorted(decode(stored), key=lambda span: span[1]):
        if start < last or end > len(body) or body[start : start + 1] != "@":
            continue  # out of date (should not happen: spans are rewritten with the text)
        out.append(plain(body[last:start]))
        out.append(tag.format(member, link.replace("{member}", str(member)), body[start:end]))  # format escapes
        last = end
    out.append(plain(body[last:]))
    return Markup("").join(out)
