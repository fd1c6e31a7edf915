"""``flask`` commands for operators."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import with_appcontext

from .services import export


@click.command("retention")
@with_appcontext
def retention_command() -> None:
    """Delete messages of rooms whose retention period has passed (safe to run from a scheduler)."""
    done = export.apply_retention()
    total = sum(done.values())
    for code, count in done.items():
        click.echo(f"room {code}: {count} messages deleted")
    click.echo(f"retention: {total} messages deleted in {len(done)} rooms")


def init_app(app: Flask) -> None:
    """Register the ``flask`` commands."""
    app.cli.add_command(retention_command)
