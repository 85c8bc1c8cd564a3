"""`flask` command groups beyond the basic ones in cli.py, and what every command shares."""
from __future__ import annotations

import sys

import click

from lhb_review.core.actors import Actor

CLI_ACTOR = Actor(email="cli@localhost", kind="system")


def fail(message: str, code: int = 1):
    """Print the message in red on stderr and exit with ``code``."""
    click.secho(message, fg="red", err=True)
    sys.exit(code)
