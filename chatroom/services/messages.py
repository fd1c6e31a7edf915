"""Messages: posting (idempotent, in room order), editing and deleting one's own, reading by cursor.

A message gets its ``seq`` when it becomes visible: at posting, or at approval
under pre-moderation (see ``moderation.approve``). Edits and removals
take a change number ``rev`` from the room under the same row lock, so a stream
can replay them in order after a reconnect (see ``chatroom/stream_protocol.py``).

One module, though past 450 lines, because the post has two paths that must give the same answers: the
one-statement post (``post_at_once``), whose SQL encodes the rules, and the full path (``post``), which
checks them in Python and is what the first falls back to. Kept side by side with the body limit, the
token rule and the seq-taking insert they share, a rule changed in one is seen beside the other.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    Insert,
    Integer,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached

from .. import db_pool, events, mentions, metrics
from ..extensions import db
from ..models import EDIT_WINDOW, Membership, Message, MessageStatus, Room, RoomStatus, utcnow
from ..text import Limit, clean_body, problem, seconds_phrase
from . import Invalid, participation
from ._core import (
    ROOMS,
    next_rev,
    next_seq,
    panel_view,
    publish,
    publish_panel_change,
    refuses_cleanly,
    room_gone,
    seq_bump,
)

BODY_MAX = 2000
BODY = Limit(
    label="Your message",
    maximum=BODY_MAX,
    empty="Write a message before sending",
    too_long="Shorten your message to {maximum} characters or fewer (it has {count})",
)
PUBLISHED = MessageStatus.PUBLISHED.value


def _check_body(body: str) -> str:
    """The body as stored (``text.clean_body``): NFC, at most ``BODY_MAX`` characters as seen.

    :raise Invalid 422: nothing visible, or too long (counted in grapheme clusters, ``text.length``).
    """
    text = clean_body(body)
    wrong = problem(body, text, BODY)
    if wrong:
        raise Invalid({"body": wrong})
    return text


def _is_token(token: str) -> bool:
    """Whether ``token`` is a form's idempotency token as ``passwords.form_token`` makes it: 32 hex digits."""
    return len(token) == 32 and all(c in "0123456789abcdef" for c in token)


def _check_can_post(membership: Membership, room: Room) -> None:
    if not membership.active:
        raise Invalid({"body": "You are no longer in this room: join again to post"}, 403)
    if room.status() is not RoomStatus.OPEN:
        raise Invalid({"body": "This room is not open, so messages cannot be sent"}, 403)
    if membership.is_host:
        return
    if room.locked:
        raise Invalid({"body": "The host has locked the room: you can read but not post"}, 403)
    if room.slow_mode_seconds:
        last = db.session.scalar(
            select(Message.created_at)
            .where(Message.membership_id == membership.id)
            .order_by(Message.created_at.desc())
            .limit(1)
        )
        if last is not None:
            wait = room.slow_mode_seconds - (utcnow() - last).total_seconds()
            if wait > 0:
                seconds = math.ceil(wait)
                raise Invalid(
                    {"body": f"Slow mode is on: you can post again in {seconds_phrase(seconds)}"}, 429, seconds
                )


def mentions_in(room_id: int, text: str) -> str:
    """The ``@alias`` mentions of the room's active seats in ``text``, as ``Message.mentions`` keeps them."""
    if "@" not in text:
        return ""
    seats = db.session.execute(
        select(Membership.alias_key, Membership.id).where(Membership.room_id == room_id, Membership.left_at.is_(None))
    )
    return mentions.encode(mentions.find(text, {key: member for key, member in seats}))


def prepare_post() -> bool:
    """Call before the first query of a request that posts (``post``): from then on each statement commits
    by itself (``db_pool.autocommit``), so ``post`` costs PostgreSQL two round trips instead of four (no
    ``BEGIN``, no ``COMMIT``), and ``post_at_once`` one. Safe because every write either makes is one
    statement: the insert that takes the next ``seq`` (the room's row is locked for that statement only), or
    a held message's insert.
    A no-op on SQLite, or once the request's transaction has begun; returns whether it took effect.
    """
    return db_pool.autocommit(db.session)


@metrics.timed_post
@refuses_cleanly
def post(membership: Membership, body: str, token: str, question: bool = False) -> tuple[Message, bool]:
    """Store a message and publish it; returns (message, created). ``question``: asked as a question (votes).

    The room row is locked while the next ``seq`` is taken, so commit order is
    ``seq`` order. A resubmitted form (same ``token``) returns the stored
    message with ``created`` False and publishes nothing. Under pre-moderation a
    participant's message waits in the host's queue with no ``seq``.

    :raise Invalid 422: empty or too long. :raise Invalid 403: not open, locked, or the seat was closed.
    :raise Invalid 429: slow mode, or too many messages waiting for approval already.
    :raise Invalid 400: the form carries no valid token. :raise Invalid 409: the token already sent other words.
    """
    text = _check_body(body)
    if not _is_token(token):
        raise Invalid({"body": "This form has expired: reload the page and send again"}, 400)
    room = membership.room
    # A resubmitted form (same token) is answered with the stored message. Its twin is found by the unique
    # (room_id, client_token) at the commit, so an ordinary post costs no lookup; only a refusal looks first,
    # since the form may have gone through before the room was locked or the queue filled.
    try:
        _check_can_post(membership, room)
        marks = {"question": question, "mentions": mentions_in(room.id, text), "search_config": room.search_language}
        if room.premoderation and not membership.is_host:
            return _hold(membership, room, text, token, marks)
    except Invalid:
        existing = _sent_before(room.id, token, text)
        if existing is not None:
            return existing, False
        raise

    room_id = room.id  # kept: a refused insert rolls back
    values = {"body": text, "client_token": token, "status": PUBLISHED, **marks}
    try:
        message, rev = _store_visible(room, membership, values)
    except IntegrityError:  # the same form, sent twice at once, committed first: answer with that one
        db.session.rollback()
        twin = _sent_before(room_id, token, text)
        if twin is None:
            raise
        return twin, False
    # Rendered before the commit, so the publish follows it at once: the longer that gap, the more often
    # two posts reach the streams out of order (each process's writer then re-reads the database once).
    # After ``prepare_post`` the insert committed by itself, and this render is the whole gap. So if the
    # render (or the commit) fails, the message may be stored already: the room's streams are told to
    # re-read the database, or its tabs would not see it until the next post (a resent form finds the
    # stored twin and publishes nothing).
    _announce(room, message, rev, commit=True)
    if question:
        publish_questions(room)
    return message, True


def _announce(room: Room, message: Message, rev: int, commit: bool) -> None:
    """Render the stored ``message``'s event, commit first if ``commit``, and publish it. Should the render or
    the commit fail, the message may be stored already (autocommit): the room's streams are told to re-read
    the database (``RESYNC``), and the error goes on up."""
    try:
        event = events.message_posted(room, message, rev)
        if commit:
            db.session.commit()
    except Exception:
        publish(room, events.RESYNC)
        raise
    publish(room, event)


def publish_questions(room: Room) -> None:
    """The host's questions panel, again (a question appeared, was approved, or went); call after the commit."""
    publish(room, events.host_questions_changed(room, participation.top_questions(room)))


MESSAGES = cast(Table, Message.__table__)
_STORED = (
    "membership_id",
    "body",
    "client_token",
    "status",
    "rev",
    "created_at",
    "published_at",
    "question",
    "mentions",
    "search_config",
)


def _insert_statement() -> Insert:
    """PostgreSQL: take the room's next ``seq`` and insert the message in one statement (one round trip; the
    room's row stays locked until the commit, which under ``prepare_post`` is the end of this statement). A
    deleted room inserts nothing. Returns (id, seq, room's rev)."""
    bump = seq_bump("v_room_id").cte("bump")
    # Parameters are named v_<column>: an UPDATE takes any parameter named like one of its columns as a value
    # to SET, and rooms has a created_at too.
    row = select(
        bindparam("v_room_id", type_=Integer),
        bump.c.last_seq,
        *(bindparam(f"v_{name}", type_=MESSAGES.c[name].type) for name in _STORED),
    )
    return (
        insert(MESSAGES)
        .from_select(["room_id", "seq", *_STORED], row)
        .returning(MESSAGES.c.id, MESSAGES.c.seq, select(bump.c.last_rev).scalar_subquery())
    )


def _stored_message(row: dict[str, object], author: Membership) -> Message:
    """A new ``Message`` object holding the stored ``row`` (column name -> value; absent columns None), by
    ``author``, with no reactions or votes yet; in no session."""
    message = Message(**{column.key: row.get(column.key) for column in MESSAGES.columns})
    message.author, message.reactions, message.votes = author, [], []
    return message


_INSERT_WITH_SEQ = _insert_statement()
_INSERT = insert(MESSAGES).returning(MESSAGES.c.id)


def _store_visible(room: Room, membership: Membership, values: dict[str, object]) -> tuple[Message, int]:
    """Insert a visible message with the room's next ``seq``, through SQLAlchemy Core (the ORM's unit of work
    cost more than the rest of the post); returns (the message, the room's change number). The message is in
    the session as if it had been loaded, so callers may change it as any other.

    ``values``: body, client_token, status and the marks (``question``, ``mentions``, ``search_config``).
    :raise IntegrityError: the unique ``(room_id, client_token)`` refused it (a twin committed first).
    :raise Invalid 404: the room is gone.
    """
    now = utcnow()
    row = {"room_id": room.id, "membership_id": membership.id, "rev": 0, "created_at": now, "published_at": now}
    row.update(values)
    if db.session.get_bind().dialect.name == "postgresql":
        found = db.session.execute(_INSERT_WITH_SEQ, {f"v_{key}": value for key, value in row.items()}).first()
        if found is None:
            raise room_gone()
        row["id"], row["seq"], rev = found
    else:  # SQLite: no UPDATE inside WITH, so two statements under the same lock
        row["seq"], rev = next_seq(room.id)
        row["id"] = db.session.execute(_INSERT, row).scalar_one()
    message = _stored_message(row, membership)
    make_transient_to_detached(message)  # its history is reset: the commit writes nothing more
    db.session.add(message)
    return message, rev


MEMBERSHIPS = cast(Table, Membership.__table__)


def _post_statement() -> Select[Any]:
    """PostgreSQL: a participant's common post as one statement: find the seat the session holds in the room
    with this code, check that it may post there now, take the room's next ``seq`` and insert the message.

    The room's rules are in the ``UPDATE``'s ``WHERE``, so PostgreSQL checks them again on the row it locks
    (a lock, an end or pre-moderation committed meanwhile is seen). Anything that needs more than a yes
    (slow mode, pre-moderation, a locked room, an ended or scheduled one, a closed seat) inserts nothing.
    Returns the message's id and seq, the room's id, last rev and time zone, and the seat's id, alias and
    host flag; no row when it inserted nothing.
    """
    rooms, seats = ROOMS.c, MEMBERSHIPS.c
    seat = (
        select(seats.id, seats.room_id, seats.alias, seats.is_host)
        .where(tuple_(seats.room_id, seats.id).in_(bindparam("v_seats", expanding=True)), seats.left_at.is_(None))
        .cte("seat")
    )
    now = bindparam("v_now", type_=rooms.starts_at.type)
    # Parameters are named v_<name>: an UPDATE takes a parameter named like one of its columns as a value to SET.
    bump = (
        update(ROOMS)
        .where(
            rooms.id == seat.c.room_id,
            rooms.code == bindparam("v_code"),
            rooms.starts_at <= now,
            rooms.ends_at > now,
            ~rooms.locked,  # the host's seat is never in a session (``access.held_seats``): no exemption here
            rooms.slow_mode_seconds == 0,
            ~rooms.premoderation,
        )
        .values(last_seq=rooms.last_seq + 1)
        .returning(
            rooms.id,
            rooms.last_seq,
            rooms.last_rev,
            rooms.timezone,
            rooms.search_language,
            seat.c.id.label("seat_id"),
            seat.c.alias,
            seat.c.is_host,
        )
        .cte("bump")
    )
    values: dict[str, ColumnElement[Any]] = {
        name: bindparam(f"v_{name}", type_=MESSAGES.c[name].type) for name in _STORED
    }
    search_config = sql_cast(bump.c.search_language, MESSAGES.c.search_config.type)  # regconfig, from a string
    values.update(membership_id=bump.c.seat_id, search_config=search_config)
    values["published_at"] = values["created_at"]
    stored = insert(MESSAGES).from_select(
        ["room_id", "seq", *_STORED], select(bump.c.id, bump.c.last_seq, *values.values())
    )
    inserted = stored.returning(MESSAGES.c.id, MESSAGES.c.seq).cte("inserted")
    return select(
        inserted.c.id,
        inserted.c.seq,
        bump.c.id.label("room_id"),
        bump.c.last_rev,
        bump.c.timezone,
        bump.c.seat_id,
        bump.c.alias,
        bump.c.is_host,
    ).select_from(inserted.join(bump, true()))


_POST_AT_ONCE = _post_statement()


@metrics.timed_post
def post_at_once(code: str, seats: list[tuple[int, int]], body: str, token: str) -> tuple[Message, bool] | None:
    """A participant's post in one statement (``_post_statement``), committed by itself, rendered and published;
    returns (message, True), or None when it is not that simple, and ``post`` must decide: nothing was written.

    ``code``: the room's public code (lower case). ``seats``: the (room id, seat id) pairs the caller's session
    holds (``access.held_seats``). ``body``, ``token``: the form's.
    The common post costs one round trip and no ORM query: loading the room and the seat as ORM objects was
    about a quarter of the post view's CPU (``docs/benchmarks.md``, 2026-12-01 night). None, for the full path,
    when: not PostgreSQL, or the session's transaction has begun (``db_pool.autocommit``); a body or token
    ``post`` would refuse; mentions (``@``); and whatever the statement does not let through (see there). A
    form sent twice (the unique ``(room_id, client_token)``) is None too: ``post`` answers with the first.
    """
    if not seats or not _is_token(token) or not db_pool.autocommit(db.session):
        return None
    try:
        text = _check_body(body)
    except Invalid:  # ``post`` refuses it, with the page around the reason
        return None
    if "@" in text:
        return None
    now = utcnow()
    row: dict[str, object] = {"body": text, "client_token": token, "status": PUBLISHED, "rev": 0, "created_at": now}
    row.update(question=False, mentions="")
    params = {"v_code": code, "v_seats": seats, "v_now": now, **{f"v_{key}": value for key, value in row.items()}}
    try:
        found = db.session.connection().execute(_POST_AT_ONCE, params).first()  # Core: no ORM on the way
    except IntegrityError:  # this form went through already: ``post`` finds it and answers with it
        db.session.rollback()
        prepare_post()
        return None
    if found is None:
        return None
    message_id, seq, room_id, rev, timezone, seat_id, alias, is_host = found
    # Transient objects, only to render the partial: nothing here goes into the session.
    room = Room(id=room_id, code=code, timezone=timezone)
    author = Membership(id=seat_id, room_id=room_id, alias=alias, is_host=is_host)
    row.update(id=message_id, room_id=room_id, seq=seq, membership_id=seat_id, published_at=now)
    message = _stored_message(row, author)
    _announce(room, message, rev, commit=False)  # the statement committed itself
    return message, True


def _hold(membership: Membership, room: Room, text: str, token: str, marks: dict[str, object]) -> tuple[Message, bool]:
    """Keep a participant's message in the host's queue (pre-moderation); it has no ``seq`` until approved.

    :raise Invalid 429: the participant has ``PENDING_PER_PARTICIPANT`` messages waiting already.
    """
    cap = int(current_app.config.get("PENDING_PER_PARTICIPANT", 10))
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(Message.membership_id == membership.id, Message.status == MessageStatus.PENDING.value)
    )
    if (waiting or 0) >= cap:
        reason = (
            f"You have {cap} messages waiting for the host's approval. "
            "Wait until the host has approved or rejected some of them, then send again"
        )
        raise Invalid({"body": reason}, 429)
    before = panel_view(room, "queue")
    message = Message(
        room_id=room.id,
        seq=None,
        membership_id=membership.id,
        body=text,
        client_token=token,
        status=MessageStatus.PENDING.value,
        **marks,
    )
    db.session.add(message)
    twin = _commit_unless_twin(room.id, token, text)
    if twin is not None:
        return twin, False
    publish_panel_change(room, "queue", before)
    return message, True


HELD_NOTE = timedelta(hours=1)  # how long the author's page still says a held message was declined


def held_for(membership: Membership) -> list[Message]:
    """The author's own messages held for the host (pre-moderation), and those declined in the last hour,
    oldest first: shown to the author alone, beside their composer."""
    since = utcnow() - HELD_NOTE
    return list(
        db.session.scalars(
            select(Message)
            .where(
                Message.membership_id == membership.id,
                (Message.status == MessageStatus.PENDING.value)
                | ((Message.status == MessageStatus.REJECTED.value) & (Message.created_at >= since)),
            )
            .order_by(Message.created_at, Message.id)
        )
    )


def _commit_unless_twin(room_id: int, token: str, text: str) -> Message | None:
    """Commit the new message; None when it is stored, or the twin's message when the same form, sent twice at
    once, committed first (the unique ``(room_id, client_token)`` refuses this one, and nothing of it is kept).

    :raise IntegrityError: refused for another reason. :raise Invalid 409: the twin has other words (``_sent_before``).
    """
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        existing = _sent_before(room_id, token, text)
        if existing is None:
            raise
        return existing
    return None


def _sent_before(room_id: int, token: str, text: str) -> Message | None:
    """The message this form (or API call) already sent with ``token``, or None: the answer to a resubmission.

    A token is one message: the same token with other words is not a resubmission, and answering with the
    first message would drop the new words without a word (a form edited and sent again after its first
    answer was lost). A message changed since (edited, removed or declined) is not compared: its words are
    no longer the ones sent.

    :raise Invalid 409: the token already sent different words (the form comes back with a fresh token).
    """
    existing = _message_by_token(room_id, token)
    if existing is not None and existing.body and existing.edited_at is None and existing.body != text:
        problem = "This form already sent a different message. Send again to post this one"
        raise Invalid({"body": problem}, 409)
    return existing


def _message_by_token(room_id: int, token: str) -> Message | None:
    return db.session.scalar(select(Message).where(Message.room_id == room_id, Message.client_token == token))


def find(room: Room, seq: int) -> Message | None:
    """The visible message at ``seq`` in ``room`` (scoped: another room's messages are unreachable)."""
    return db.session.scalar(
        select(Message).where(Message.room_id == room.id, Message.seq == seq, Message.status == PUBLISHED)
    )


def _check_own_and_recent(membership: Membership, message: Message) -> None:
    if message.membership_id != membership.id:
        raise Invalid({"body": "You can only change your own messages"}, 403)
    if message.removed:
        raise Invalid({"body": "This message was removed"}, 409)
    if not message.editable_by(membership):
        minutes = EDIT_WINDOW.seconds // 60
        problem = f"Messages can be changed for {minutes} minutes after posting; this one can no longer be"
        raise Invalid({"body": problem}, 403)
    if not membership.active or membership.room.status() is not RoomStatus.OPEN:
        raise Invalid({"body": "This room is not open, so messages cannot be changed"}, 403)


@refuses_cleanly
def edit(membership: Membership, message: Message, body: str) -> Message:
    """The author corrects their message within 5 minutes; everyone sees it marked edited.

    :raise Invalid 403: not theirs, too late, or the room is locked (an edit is new words: the lock's "read but not
        post" covers it; deleting one's own message stays possible). :raise Invalid 422: empty or too long.
    """
    _check_own_and_recent(membership, message)
    if membership.room.locked and not membership.is_host:
        raise Invalid({"body": "The host has locked the room: you can read but not change your messages"}, 403)
    text = _check_body(body)
    if text == message.body:
        return message
    rev, seq = next_rev(message.room_id)
    message.body, message.edited_at, message.rev = text, utcnow(), rev
    message.mentions = mentions_in(message.room_id, text)
    event = events.message_changed(membership.room, message, seq, rev)
    db.session.commit()
    publish(membership.room, event)
    return message


@refuses_cleanly
def delete_own(membership: Membership, message: Message) -> Message:
    """The author deletes their message within 5 minutes: it shows "message removed" for everyone.

    :raise Invalid 403: not theirs, or too late.
    """
    _check_own_and_recent(membership, message)
    return mark_removed(membership.room, message, "author")


def mark_removed(room: Room, message: Message, by: str) -> Message:
    """Blank a message's text, commit and publish the change (the text is not kept); ``by`` is author or host."""
    rev, seq = next_rev(room.id)
    message.body, message.removed_at, message.removed_by, message.rev = "", utcnow(), by, rev
    message.mentions = ""
    event = events.message_changed(room, message, seq, rev)
    db.session.commit()
    publish(room, event)
    if message.question:
        publish_questions(room)
    return message


def after(room_id: int, after: int, limit: int = 500) -> list[Message]:
    """Visible messages with ``seq`` > ``after``, in order (the stream's replay)."""
    return list(
        db.session.scalars(
            select(Message).where(Message.room_id == room_id, Message.seq > after).order_by(Message.seq).limit(limit)
        )
    )


def changes_after(room_id: int, rev: int, up_to_seq: int, limit: int = 500) -> list[Message]:
    """Messages up to ``up_to_seq`` changed after change number ``rev``, in change order."""
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.room_id == room_id, Message.rev > rev, Message.seq <= up_to_seq)
            .order_by(Message.rev)
            .limit(limit)
        )
    )


def before(room_id: int, before: int | None, limit: int) -> list[Message]:
    """Up to ``limit`` messages before ``seq`` (or the newest), oldest first: paging by cursor, not offset."""
    query = select(Message).where(Message.room_id == room_id, Message.seq.is_not(None))
    if before is not None:
        query = query.where(Message.seq < before)
    rows = list(db.session.scalars(query.order_by(Message.seq.desc()).limit(limit)))
    rows.reverse()
    return rows


def count(room_id: int) -> int:
    """How many messages the room shows (removed ones included, held and rejected ones not)."""
    return (
        db.session.scalar(
            select(func.count()).select_from(Message).where(Message.room_id == room_id, Message.status == PUBLISHED)
        )
        or 0
    )
