"""`flask` command groups beyond the basic ones in cli.py, and what every command shares."""
from __future__ import annotations

import sys

import click

from lhb_review.core.actors import Actor

CLI_ACTOR = Actor(email="cli@localhost", kind="system")


DEMO_ENVIRONMENTS = ("development", "test")
DEMO_OVERRIDE = "--yes-put-demo-data-in-this-environment"


def demo_option(command):
    """The deliberate override of ``refuse_demo_outside_development``, spelled so nobody types it by accident."""
    return click.option(DEMO_OVERRIDE, "demo_override", is_flag=True,
                        help="Create demo data and accounts even outside development and test.")(command)


def refuse_demo_outside_development(app_env: str, override: bool) -> None:
    """Demo data and demo accounts (printed passwords) belong in development and test only."""
    if app_env not in DEMO_ENVIRONMENTS and not override:
        fail(f"Refusing to create demo data with APP_ENV={app_env}: demo orders and demo accounts with printed "
             f"passwords belong in development and test only. Create real accounts with "
             f"`flask users create EMAIL --role admin`.", code=2)


def fail(message: str, code: int = 1):
    """Print the message in red on stderr and exit with ``code``."""
    click.secho(message, fg="red", err=True)
    sys.exit(code)
