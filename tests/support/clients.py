"""A Flask test client that behaves like a browser's forms and htmx requests, and reading tokens out of pages."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient


class Client(FlaskClient):
    """A test client that reads its CSRF token from a page, as a browser form would carry it."""

    _csrf: str | None = None

    def csrf(self) -> str:
        """This session's CSRF token, read once from the sign-in page's meta tag."""
        if self._csrf is None:
            page = self.get("/login").get_data(as_text=True)
            self._csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        return self._csrf

    def form(self, url: str, data: dict[str, str] | None = None, **kwargs: Any) -> Any:
        """POST ``data`` as a form with the CSRF token, as a browser without JavaScript would."""
        response = self.post(url, data={"csrf_token": self.csrf(), **(data or {})}, **kwargs)
        if url in ("/login", "/logout", "/signup"):
            self._csrf = None  # a new session comes with a new token
        return response

    def htmx(self, method: str, url: str, data: dict[str, str] | None = None) -> Any:
        """A request as htmx sends it: ``HX-Request``, and the CSRF token as a header on anything but GET."""
        headers = {"HX-Request": "true"}
        if method == "GET":
            return self.get(url, headers=headers)
        headers["X-CSRFToken"] = self.csrf()
        return self.open(url, method=method, data=data or {}, headers=headers)


def form_token(html: str) -> str:
    """The one-time post token (``name="token"``) of the message form in ``html``."""
    return re.search(r'name="token" value="([0-9a-f]{32})"', html).group(1)


def say(client: Any, room: Any, body: str) -> Any:
    """Post ``body`` in ``room`` as ``client``'s seat through the room page's form (its one-time token).

    A page without a message box (the room ended, the seat closed) gets a made-up token: the refusal is the point.
    """
    page = client.get(f"/r/{room.code}").get_data(as_text=True)
    token = form_token(page) if 'name="token"' in page else "f" * 32
    return client.form(f"/r/{room.code}/messages", {"body": body, "token": token})
