"""Outgoing mail: SMTP when ``MAIL_SERVER`` is set, else the application log.

Settings come from ``config.py`` (``MAIL_SERVER``, ``MAIL_PORT`` 587,
``MAIL_USERNAME``, ``MAIL_PASSWORD``, ``MAIL_FROM``, ``MAIL_USE_TLS`` on).
Without a server, a mail is written to the log at INFO, links and all, so a
laptop or a test can follow a password reset without an SMTP server; the log
line says that nothing was sent.

``send_mail`` talks to the server before it returns and raises if that fails.
``send_mail_soon`` is what request handlers use: it hands the SMTP exchange to a
background thread (a greenlet under gunicorn's gevent workers), so a slow mail
server never stalls the request and the answer takes as long whether or not a
mail went out (the password-reset form must not reveal which addresses have
accounts).
"""

from __future__ import annotations

import logging
import smtplib
import threading
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from flask import current_app

log = logging.getLogger(__name__)


def _settings() -> dict[str, Any]:
    config = current_app.config
    return {
        "server": config.get("MAIL_SERVER"),
        "port": config.get("MAIL_PORT", 587),
        "username": config.get("MAIL_USERNAME"),
        "password": config.get("MAIL_PASSWORD"),
        "sender": config.get("MAIL_FROM") or config.get("MAIL_USERNAME") or "chatroom@localhost",
        "tls": config.get("MAIL_USE_TLS", True),
        "timeout": config.get("MAIL_TIMEOUT_SECONDS", 10.0),
    }


def _message(sender: str, to: str, subject: str, body: str, html: str | None = None) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")  # multipart/alternative: mail programs pick one (RFC 2046)
    return message


def _log_instead(to: str, subject: str, body: str) -> None:
    log.info(
        "MAIL_SERVER is not set, so this mail was not sent; here it is instead.\nTo: %s\nSubject: %s\n\n%s",
        to,
        subject,
        body,
    )


def _deliver(settings: dict[str, Any], message: EmailMessage) -> None:
    with smtplib.SMTP(settings["server"], settings["port"], timeout=settings["timeout"]) as smtp:
        if settings["tls"]:
            smtp.starttls()
        if settings["username"]:
            smtp.login(settings["username"], settings["password"] or "")
        smtp.send_message(message)


def send_mail(to: str, subject: str, body: str, html: str | None = None) -> None:
    """Send a mail now: ``body`` as plain text, ``html`` as its alternative (or log it when no server is set).

    :raise OSError: SMTP failed.
    """
    settings = _settings()
    if not settings["server"]:
        _log_instead(to, subject, body)
        return
    _deliver(settings, _message(settings["sender"], to, subject, body, html))


def send_mail_soon(to: str, subject: str, body: str, html: str | None = None) -> threading.Thread | None:
    """Send a mail in the background (as ``send_mail``); failures are logged. Returns the thread, for tests."""
    settings = _settings()
    if not settings["server"]:
        _log_instead(to, subject, body)
        return None
    message = _message(settings["sender"], to, subject, body, html)

    def run() -> None:
        try:
            _deliver(settings, message)
        except OSError:  # smtplib.SMTPException is an OSError
            log.exception("could not send mail %r to %s through %s", subject, to, settings["server"])

    thread = threading.Thread(target=run, name="chatroom-mail", daemon=True)
    thread.start()
    return thread
