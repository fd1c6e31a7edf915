"""``flask`` commands for the people who run Chatroom (``FLASK_APP=wsgi flask --help``).

- ``flask facilitators create|list|disable|enable|reset-two-factor|admin``: accounts, without the web pages
  (``create`` works whatever the sign-up mode; ``admin`` grants the admin role);
- ``flask rooms list|export``: rooms across the instance, and a transcript to a file;
- ``flask stats``: instance statistics, as the admin page shows them;
- ``flask retention``: the daily clean-up (safe to run from a scheduler).

Every command explains itself with ``--help``. A refusal (an unknown account or room, a
rule broken) prints ``Error: <why>`` on standard error and exits with status 1; a
mistake in the command line itself exits with status 2 (click's usage errors).
"""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from .extensions import db
from .models import Facilitator, Room, RoomStatus, utcnow
from .services import Invalid, accounts, admin, export, messages


def _facilitator(email: str) -> Facilitator:
    facilitator = accounts.find_facilitator(email)
    if facilitator is None:
        raise click.ClickException(f"no facilitator has the email address {email!r}")
    return facilitator


def _refused(invalid: Invalid) -> click.ClickException:
    return click.ClickException(invalid.message)


@click.command("retention")
@with_appcontext
def retention_command() -> None:
    """Delete messages of rooms whose retention period has passed (safe to run from a scheduler)."""
    done = export.apply_retention()
    total = sum(done.values())
    for code, count in done.items():
        click.echo(f"room {code}: {count} messages deleted")
    click.echo(f"retention: {total} messages deleted in {len(done)} rooms")


# -- facilitators ---------------------------------------------------------------------------


@click.group("facilitators")
def facilitators_group() -> None:
    """Facilitator accounts: create, list, disable, enable, make admin."""


@facilitators_group.command("create")
@click.argument("email")
@click.option("--name", required=True, help="The name shown beside their messages.")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when left out (better: a password on the command line is seen by other users of the machine).",
)
@click.option("--admin", "make_admin", is_flag=True, help="Also give the account the admin role.")
@with_appcontext
def create_facilitator(email: str, name: str, password: str, make_admin: bool) -> None:
    """Create a facilitator account with EMAIL (whatever the sign-up mode), optionally an admin."""
    try:
        facilitator = accounts.sign_up(email, name, password)
        if make_admin:
            admin.set_admin(facilitator, True)
    except Invalid as invalid:
        raise _refused(invalid) from None
    role = "admin" if facilitator.is_admin else "facilitator"
    click.echo(f"created {role} {facilitator.email} (id {facilitator.id})")


@facilitators_group.command("list")
@with_appcontext
def list_facilitators() -> None:
    """List every account: id, email, name, rooms, and flags (admin, 2fa, disabled)."""
    rows = admin.facilitators()
    for facilitator, rooms in rows:
        flags = [
            flag
            for flag, on in (
                ("admin", facilitator.is_admin),
                ("2fa", facilitator.two_factor),
                ("disabled", facilitator.disabled_at is not None),
            )
            if on
        ]
        click.echo(f"{facilitator.id}\t{facilitator.email}\t{facilitator.name}\t{rooms} rooms\t{','.join(flags)}")
    click.echo(f"{len(rows)} accounts", err=True)


@facilitators_group.command("disable")
@click.argument("email")
@with_appcontext
def disable_facilitator(email: str) -> None:
    """Disable the account with EMAIL: it cannot sign in; its sessions and API tokens stop working."""
    facilitator = _facilitator(email)
    admin.disable(None, facilitator)
    click.echo(f"disabled {facilitator.email}")


@facilitators_group.command("enable")
@click.argument("email")
@with_appcontext
def enable_facilitator(email: str) -> None:
    """Let the disabled account with EMAIL sign in again."""
    facilitator = _facilitator(email)
    admin.enable(facilitator)
    click.echo(f"enabled {facilitator.email}")


@facilitators_group.command("reset-two-factor")
@click.argument("email")
@with_appcontext
def reset_two_factor(email: str) -> None:
    """Turn off two-factor sign-in for EMAIL (a lost phone and lost recovery codes); their sessions end."""
    facilitator = _facilitator(email)
    try:
        admin.reset_two_factor(facilitator)
    except Invalid as invalid:
        raise _refused(invalid) from None
    click.echo(f"two-factor sign-in is off for {facilitator.email}")


@facilitators_group.command("admin")
@click.argument("email")
@click.option("--revoke", is_flag=True, help="Take the admin role away instead.")
@with_appcontext
def set_admin(email: str, revoke: bool) -> None:
    """Give the account with EMAIL the admin role (the /admin pages), or take it away with --revoke."""
    facilitator = _facilitator(email)
    admin.set_admin(facilitator, not revoke)
    click.echo(f"{facilitator.email} is {'no longer' if revoke else 'now'} an admin")


# -- rooms ------------------------------------------------------------------------------------


@click.group("rooms")
def rooms_group() -> None:
    """Rooms across the instance: list, export a transcript."""


@rooms_group.command("list")
@click.option("--owner", metavar="EMAIL", help="Only the rooms of this facilitator.")
@click.option("--status", type=click.Choice([s.value for s in RoomStatus]), help="Only rooms in this state.")
@with_appcontext
def list_rooms(owner: str | None, status: str | None) -> None:
    """List rooms, newest start first: code, state, start and end (UTC), messages, owner, title."""
    query = select(Room).order_by(Room.starts_at.desc())
    if owner is not None:
        query = query.where(Room.owner_id == _facilitator(owner).id)
    now = utcnow()
    shown = 0
    for room in db.session.scalars(query):
        state = room.status(now).value
        if status is not None and state != status:
            continue
        shown += 1
        times = f"{room.starts_at:%Y-%m-%d %H:%M}\t{room.ends_at:%Y-%m-%d %H:%M}"
        click.echo(f"{room.code}\t{state}\t{times}\t{messages.count(room.id)}\t{room.owner.email}\t{room.title}")
    click.echo(f"{shown} rooms", err=True)


@rooms_group.command("export")
@click.argument("code")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(export.TRANSCRIPT_FORMATS)),
    default="md",
    show_default=True,
    help="The transcript's format, as the room's owner page offers them.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True, path_type=Path),
    required=True,
    help="The file to write (- for standard output). An existing file is replaced.",
)
@with_appcontext
def export_room(code: str, fmt: str, output: Path) -> None:
    """Write the transcript of the room with CODE to a file."""
    room = db.session.scalar(select(Room).where(Room.code == code))
    if room is None:
        raise click.ClickException(f"no room has the code {code!r}")
    # The HTML transcript renders a template: it needs a request context (for url_for).
    with current_app.test_request_context():
        chunks = export.transcript(room, fmt)
        if str(output) == "-":
            for chunk in chunks:
                click.echo(chunk, nl=False)
            return
        try:
            with output.open("w", encoding="utf-8", newline="") as file:
                for chunk in chunks:
                    file.write(chunk)
        except OSError as error:
            raise click.ClickException(f"cannot write {output}: {error.strerror}") from None
    click.echo(f"room {room.code}: transcript written to {output}", err=True)


# -- statistics ---------------------------------------------------------------------------------


@click.command("stats")
@with_appcontext
def stats_command() -> None:
    """Instance statistics: accounts, rooms by state, messages today (UTC) and in all."""
    stats = admin.stats()
    click.echo(f"facilitators\t{stats.facilitators}")
    click.echo(f"admins\t{stats.admins}")
    click.echo(f"disabled\t{stats.disabled}")
    click.echo(f"rooms scheduled\t{stats.rooms_scheduled}")
    click.echo(f"rooms open\t{stats.rooms_open}")
    click.echo(f"rooms ended\t{stats.rooms_ended}")
    click.echo(f"messages today\t{stats.messages_today}")
    click.echo(f"messages\t{stats.messages_total}")
    click.echo(f"sign-up\t{admin.signup_mode()}")


def init_app(app: Flask) -> None:
    """Register the ``flask`` commands."""
    app.cli.add_command(retention_command)
    app.cli.add_command(facilitators_group)
    app.cli.add_command(rooms_group)
    app.cli.add_command(stats_command)
