"""The JSON API's shapes (marshmallow): what requests carry and responses hold, and so the OpenAPI document.

Schemas check *shape* only (types, required fields, the page size); the rules (a title's
length, a time zone's name, who may post when) stay in the services, which answer with
a problem document naming the field. Times are ISO 8601: responses give them in UTC,
requests may give an offset (converted to the room's time zone) or none (read in the
room's time zone, as the room form does).
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from ..models import Reactions
from ..services.export import TRANSCRIPT_FORMATS
from ..services.notes import NOTE_MAX
from ..services.rooms import SLOW_MODE_MAX, TITLE_MAX
from ..services.search import DEFAULT_LANGUAGE, LANGUAGES, QUERY_MAX

STATUSES = ("scheduled", "open", "ended")
PAGE_MAX = 200


class JsonInteger(fields.Integer):
    """An integer in a JSON body, as JSON means it: 1.5, 1e-05, true and "5" are refused, not rounded or cast."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, bool):  # True is an int to Python, not to JSON
            raise self.make_error("invalid")
        return int(super()._validated(value))


class JsonBoolean(fields.Boolean):
    """true or false, as JSON writes them: 1, "yes" and "on" are refused."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class ProblemSchema(ma.Schema):
    """A problem document (RFC 9457): every refusal under /api/."""

    type = fields.String(required=True, metadata={"description": "Always about:blank: the status says it all"})
    title = fields.String(required=True, metadata={"description": "The status's standard phrase"})
    status = fields.Integer(required=True, metadata={"description": "The HTTP status code"})
    detail = fields.String(required=True, metadata={"description": "What went wrong, in a sentence for people"})
    instance = fields.String(metadata={"description": "The path that was asked for"})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "Field name -> what is wrong with it, when the refusal is about fields"},
    )


class FacilitatorSchema(ma.Schema):
    """The account a token belongs to."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    email = fields.String(required=True)
    admin = fields.Boolean(required=True, metadata={"description": "Whether the account runs the instance"})


class RoomSchema(ma.Schema):
    """A room, as its owner sees it."""

    code = fields.String(required=True, metadata={"description": "The room's public code, in every URL"})
    url = fields.String(required=True, metadata={"description": "The link to share with participants"})
    title = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    starts_at = fields.DateTime(required=True, metadata={"description": "In UTC"})
    ends_at = fields.DateTime(required=True, metadata={"description": "In UTC"})
    timezone = fields.String(required=True, metadata={"description": "The room's time zone (IANA name)"})
    locked = fields.Boolean(required=True)
    slow_mode_seconds = fields.Integer(required=True)
    premoderation = fields.Boolean(required=True)
    retention_days = fields.Integer(required=True, allow_none=True)
    search_language = fields.String(
        required=True, metadata={"description": "The language room search matches word forms in", "enum": LANGUAGES}
    )
    messages = fields.Integer(required=True, metadata={"description": "How many messages the room shows"})
    created_at = fields.DateTime(required=True)


class RoomListSchema(ma.Schema):
    rooms = fields.List(fields.Nested(RoomSchema), required=True)


class RoomQuerySchema(ma.Schema):
    status = fields.String(validate=validate.OneOf(STATUSES), metadata={"description": "Only rooms in this state"})


_TIME_HELP = (
    "ISO 8601. With an offset (2026-12-01T14:30:00+01:00) it is converted to the room's time zone; "
    "without one it is read in the room's time zone, as the room form does."
)


_LANGUAGE_HELP = (
    "What room search matches word forms in (a PostgreSQL text search configuration): simple (the default: "
    "whole words in any language) or one language. Messages keep the language they were written under."
)


class RoomCreateSchema(ma.Schema):
    """A new room; the rules are the room form's."""

    title = fields.String(required=True, metadata={"description": f"1 to {TITLE_MAX} characters, unique per owner"})
    starts_at = fields.DateTime(required=True, metadata={"description": _TIME_HELP})
    ends_at = fields.DateTime(required=True, metadata={"description": _TIME_HELP + " After the start."})
    timezone = fields.String(load_default="UTC", metadata={"description": "IANA name, like Europe/Paris"})
    password = fields.String(required=True, metadata={"description": "The room password participants type"})
    search_language = fields.String(
        load_default=DEFAULT_LANGUAGE,
        metadata={"description": _LANGUAGE_HELP, "enum": LANGUAGES},
    )


class RoomUpdateSchema(ma.Schema):
    """Changes to a room: any of its fields; leave the password out to keep it."""

    title = fields.String(metadata={"description": f"1 to {TITLE_MAX} characters, unique per owner"})
    starts_at = fields.DateTime(metadata={"description": _TIME_HELP})
    ends_at = fields.DateTime(metadata={"description": _TIME_HELP})
    timezone = fields.String(
        metadata={"description": "IANA name. Given alone, the room keeps its start and end instants"}
    )
    password = fields.String(metadata={"description": "A new room password"})
    search_language = fields.String(metadata={"description": _LANGUAGE_HELP, "enum": LANGUAGES})


class AuthorSchema(ma.Schema):
    membership_id = fields.Integer(required=True)
    alias = fields.String(required=True)
    host = fields.Boolean(required=True)


class ReactionCountSchema(ma.Schema):
    """One reaction a message has: how many seats gave it, and whether the host (you) did."""

    emoji = fields.String(
        required=True, validate=validate.OneOf([r.value for r in Reactions]), metadata={"description": "Its name"}
    )
    symbol = fields.String(required=True, metadata={"description": "The emoji itself, as the room shows it"})
    label = fields.String(required=True, metadata={"description": "What a screen reader says"})
    count = fields.Integer(required=True)
    host_reacted = fields.Boolean(required=True, metadata={"description": "Whether the host seat gave it"})


class MessageSchema(ma.Schema):
    """A message. ``seq`` is its place in the room (none while it waits for approval)."""

    id = fields.Integer(required=True)
    seq = fields.Integer(required=True, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(("published", "pending", "rejected")))
    author = fields.Nested(AuthorSchema, required=True)
    body = fields.String(required=True, metadata={"description": "Empty once removed"})
    created_at = fields.DateTime(required=True)
    published_at = fields.DateTime(required=True, allow_none=True)
    edited_at = fields.DateTime(required=True, allow_none=True)
    removed = fields.Boolean(required=True)
    removed_by = fields.String(required=True, allow_none=True, metadata={"description": "author or host"})
    reactions = fields.List(
        fields.Nested(ReactionCountSchema),
        required=True,
        metadata={"description": "The reactions it has, in the room's fixed order (none: an empty list)"},
    )
    question = fields.Boolean(required=True, metadata={"description": "Asked as a question: others may upvote it"})
    answered = fields.Boolean(required=True, metadata={"description": "A question the host marked answered"})
    answered_at = fields.DateTime(required=True, allow_none=True)
    votes = fields.Integer(required=True, metadata={"description": "How many upvotes the question has"})


class MessagePageSchema(ma.Schema):
    """One page of messages, oldest first, and the cursors for the pages around it."""

    messages = fields.List(fields.Nested(MessageSchema), required=True)
    has_older = fields.Boolean(required=True, metadata={"description": "Whether messages before this page exist"})
    before = fields.Integer(
        required=True, allow_none=True, metadata={"description": "Send as ?before= for the older page (null: none)"}
    )
    after = fields.Integer(required=True, metadata={"description": "Send as ?after= for newer messages"})


class MessageQuerySchema(ma.Schema):
    before = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Messages before this seq (the newest page when neither cursor is given)"},
    )
    after = fields.Integer(
        validate=validate.Range(min=0, max=2**31 - 1),
        metadata={"description": "Messages after this seq, oldest first (for polling)"},
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=PAGE_MAX))


class MessageListSchema(ma.Schema):
    messages = fields.List(fields.Nested(MessageSchema), required=True)


class PostSchema(ma.Schema):
    """A message from the host."""

    body = fields.String(required=True)
    client_token = fields.String(
        validate=validate.Regexp(r"^[0-9a-fA-F]{32}\Z"),
        metadata={
            "description": "32 hex digits you choose (either case): sending the same one again returns the first "
            "message (200) instead of posting twice. Made up for you when left out."
        },
    )


class ParticipantSchema(ma.Schema):
    id = fields.Integer(required=True, metadata={"description": "The membership id, for remove and ban"})
    alias = fields.String(required=True)
    host = fields.Boolean(required=True)
    active = fields.Boolean(required=True, metadata={"description": "Still has a seat (has not left, not removed)"})
    banned = fields.Boolean(required=True)
    present = fields.Boolean(required=True, metadata={"description": "Has the room open right now"})
    joined_at = fields.DateTime(required=True)
    left_at = fields.DateTime(required=True, allow_none=True)


class ParticipantListSchema(ma.Schema):
    participants = fields.List(fields.Nested(ParticipantSchema), required=True)


class ReportSchema(ma.Schema):
    id = fields.Integer(required=True)
    message = fields.Nested(MessageSchema, required=True)
    reporter = fields.Nested(AuthorSchema, required=True)
    reason = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    resolved_at = fields.DateTime(required=True, allow_none=True)


class ReportListSchema(ma.Schema):
    reports = fields.List(fields.Nested(ReportSchema), required=True)


class AuditEventSchema(ma.Schema):
    actor = fields.String(required=True)
    action = fields.String(required=True)
    detail = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class AuditListSchema(ma.Schema):
    events = fields.List(fields.Nested(AuditEventSchema), required=True)


class MinutesSchema(ma.Schema):
    minutes = JsonInteger(required=True, metadata={"description": "1 to 1440"})


class SecondsSchema(ma.Schema):
    seconds = JsonInteger(required=True, metadata={"description": f"0 (off) to {SLOW_MODE_MAX}"})


class EnabledSchema(ma.Schema):
    enabled = JsonBoolean(required=True)


REACTION_NAMES = ", ".join(r.value for r in Reactions)


class ReactSchema(ma.Schema):
    """A reaction to toggle, by name."""

    emoji = fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in Reactions], error="Choose one of the reactions offered: {choices}"),
        metadata={"description": f"One of {REACTION_NAMES}"},
    )


class QuestionMarkSchema(ma.Schema):
    question = JsonBoolean(load_default=True, metadata={"description": "true (the default) marks, false unmarks"})


class AnsweredMarkSchema(ma.Schema):
    answered = JsonBoolean(load_default=True, metadata={"description": "true (the default) marks, false unmarks"})


class QuestionListSchema(ma.Schema):
    questions = fields.List(fields.Nested(MessageSchema), required=True)


class SearchQuerySchema(ma.Schema):
    q = fields.String(
        required=True, metadata={"description": f"The words to find (all of them), 1 to {QUERY_MAX} characters"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=PAGE_MAX))


class NoteSchema(ma.Schema):
    """One private message between a participant and the host."""

    id = fields.Integer(required=True)
    from_host = fields.Boolean(required=True, metadata={"description": "Written by the host (else by the participant)"})
    body = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class ThreadParticipantSchema(ma.Schema):
    id = fields.Integer(required=True, metadata={"description": "The membership id, for replying"})
    alias = fields.String(required=True)
    active = fields.Boolean(required=True, metadata={"description": "Still has a seat"})


class ThreadSchema(ma.Schema):
    """The private thread with one participant: its latest notes, oldest first."""

    participant = fields.Nested(ThreadParticipantSchema, required=True)
    notes = fields.List(fields.Nested(NoteSchema), required=True)


class ThreadListSchema(ma.Schema):
    threads = fields.List(fields.Nested(ThreadSchema), required=True)


class ReplySchema(ma.Schema):
    """A private answer from the host."""

    note = fields.String(required=True, metadata={"description": f"1 to {NOTE_MAX} characters"})


class TranscriptQuerySchema(ma.Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(sorted(TRANSCRIPT_FORMATS)))
