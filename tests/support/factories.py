"""Data shaped directly, without HTTP: for the fixtures' factories see ``conftest.py``."""

from __future__ import annotations

import random
from datetime import timedelta

from flask import Flask

from chatroom.extensions import db
from chatroom.models import Room
from chatroom.services import members, messages

from .constants import ROOM_PASSWORD

WORDS = (  # noqa: SIM905 - a sentence of words reads better than 55 quoted ones
    "the a we you they this that plan slide question answer idea next week group time room notes share draft "
    "agree think maybe later sure thanks point example data result study class lesson topic review read write "
    "first second third why how when where could would should really quite very about with from into over"
).split()


def end_room(app: Flask, room: Room) -> None:
    """Move a running room's end into the past, as if its time ran out (it started 10 minutes ago)."""
    with app.app_context():
        row = db.session.get(Room, room.id)
        row.ends_at = row.starts_at + timedelta(minutes=5)
        db.session.commit()


def fill_room(app: Flask, room: Room, count: int, seed: int = 50) -> None:
    """``count`` messages of chat-like text from five people (varied, so they compress like real ones)."""
    rng = random.Random(seed)
    with app.test_request_context():
        row = db.session.get(Room, room.id)
        people = [members.join(row, alias, ROOM_PASSWORD) for alias in ("Ana", "Ben", "Chloé", "Dev", "Eun")]
        for i in range(count):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 22))).capitalize() + rng.choice(".?!")
            messages.post(rng.choice(people), text, f"{i:032x}")
