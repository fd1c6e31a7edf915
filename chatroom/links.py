"""Clickable links in message text: ``{{ message.body|linkify }}``.

Links are found by linkify-it-py (a port of the linkifier markdown-it uses, kept up to date with
the public suffix and Unicode rules we would otherwise get wrong), in the text as it was written;
then every piece is escaped, the text around the links and each link's own text and address alike,
so no markup from a message can ever reach the page. Only ``http`` and ``https`` addresses become
links (``www.example.org`` too, as ``http``); the visible text stays exactly what was typed.
Links open as ``rel="nofollow noopener ugc"``: written by users, endorsed by no one, with no
handle on this page.
"""

from __future__ import annotations

from flask import Flask
from linkify_it import LinkifyIt
from markupsafe import Markup, escape

REL = "nofollow noopener ugc"
_FINDER = LinkifyIt(options={"fuzzy_email": False})


def linkify(text: str) -> Markup:
    """``text`` escaped, with its http(s) addresses as links (see the module docstring)."""
    if not _FINDER.pretest(text):
        return escape(text)
    out: list[Markup] = []
    last = 0
    for match in _FINDER.match(text) or []:
        url = match.url
        if not url.lower().startswith(("http://", "https://")):
            continue
        out.append(escape(text[last : match.index]))
        out.append(Markup('<a href="{}" rel="{}">{}</a>').format(url, REL, text[match.index : match.last_index]))
        last = match.last_index
    out.append(escape(text[last:]))
    return Markup("").join(out)


def init_app(app: Flask) -> None:
    """Make ``linkify`` a template filter."""
    app.add_template_filter(linkify)
