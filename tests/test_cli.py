"""The ``flask`` commands for operators, through Flask's CliRunner: what they print, their errors, exit codes."""

from __future__ import annotations

import json

import pytest

from chatroom.extensions import db
from chatroom.models import Facilitator
from chatroom.services import accounts
from support.constants import PASSWORD
from support.factories import fill_room

pytestmark = pytest.mark.once


@pytest.fixture
def run(app):
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(args=list(args), input=input)

    return invoke


def test_every_command_explains_itself(run):
    for command in (
        [],
        ["facilitators"],
        ["facilitators", "create"],
        ["facilitators", "list"],
        ["facilitators", "disable"],
        ["facilitators", "enable"],
        ["facilitators", "reset-two-factor"],
        ["facilitators", "admin"],
        ["rooms"],
        ["rooms", "list"],
        ["rooms", "export"],
        ["stats"],
        ["retention"],
    ):
        result = run(*command, "--help")
        assert result.exit_code == 0, command
        assert "Usage:" in result.output


def test_create_an_admin_with_a_prompted_password(app, run):
    result = run(
        "facilitators", "create", "ops@example.org", "--name", "Ops", "--admin", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "created admin ops@example.org" in result.output
    with app.app_context():
        facilitator = accounts.find_facilitator("ops@example.org")
        assert facilitator.is_admin and accounts.authenticate("ops@example.org", PASSWORD) is not None


def test_create_refuses_with_the_rules_reason_and_exit_code_1(run, make_facilitator):
    make_facilitator(email="taken@example.org")
    taken = run("facilitators", "create", "taken@example.org", "--name", "X", "--password", PASSWORD)
    assert taken.exit_code == 1 and "already exists" in taken.output
    short = run("facilitators", "create", "new@example.org", "--name", "X", "--password", "short")
    assert short.exit_code == 1 and "at least 12 characters" in short.output
    usage = run("facilitators", "create", "new@example.org")  # no --name
    assert usage.exit_code == 2


def test_list_disable_enable_and_admin(app, run, make_facilitator):
    make_facilitator(email="fran@example.org")
    listed = run("facilitators", "list")
    assert listed.exit_code == 0 and "fran@example.org" in listed.output
    assert run("facilitators", "disable", "fran@example.org").exit_code == 0
    assert "disabled" in run("facilitators", "list").output
    with app.app_context():
        assert accounts.find_facilitator("fran@example.org").disabled_at is not None
    assert run("facilitators", "enable", "fran@example.org").exit_code == 0
    assert run("facilitators", "admin", "fran@example.org").exit_code == 0
    with app.app_context():
        assert accounts.find_facilitator("fran@example.org").is_admin
    assert run("facilitators", "admin", "fran@example.org", "--revoke").exit_code == 0
    missing = run("facilitators", "disable", "nobody@example.org")
    assert missing.exit_code == 1 and "no facilitator" in missing.output
    assert run("facilitators", "reset-two-factor", "fran@example.org").exit_code == 1  # it is off


def test_rooms_list_and_export_to_a_file(app, run, make_room, tmp_path):
    room = make_room(title="Seminar")
    fill_room(app, room, 5)
    listed = run("rooms", "list", "--status", "open")
    assert listed.exit_code == 0 and room.code in listed.output and "Seminar" in listed.output
    assert room.code not in run("rooms", "list", "--status", "ended").output
    target = tmp_path / "seminar.json"
    exported = run("rooms", "export", room.code, "--format", "json", "--output", str(target))
    assert exported.exit_code == 0, exported.output
    assert len(json.loads(target.read_text())["messages"]) == 5
    html = tmp_path / "seminar.html"
    assert run("rooms", "export", room.code, "--format", "html", "-o", str(html)).exit_code == 0
    assert "Seminar" in html.read_text()
    missing = run("rooms", "export", "nosuchroom", "-o", str(tmp_path / "x.md"))
    assert missing.exit_code == 1 and "no room" in missing.output
    bad_format = run("rooms", "export", room.code, "--format", "pdf", "-o", str(tmp_path / "x.pdf"))
    assert bad_format.exit_code == 2
    unwritable = run("rooms", "export", room.code, "-o", str(tmp_path / "no" / "such" / "dir.md"))
    assert unwritable.exit_code == 1 and "cannot write" in unwritable.output


def test_stats_and_retention(app, run, make_room):
    make_room()
    stats = run("stats")
    assert stats.exit_code == 0
    assert "rooms open\t1" in stats.output and "sign-up\topen" in stats.output
    retention = run("retention")
    assert retention.exit_code == 0 and "retention: 0 messages deleted" in retention.output
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Facilitator)) == 1
