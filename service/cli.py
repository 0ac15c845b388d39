"""The `linkdesk` operator command: Flask's commands plus LinkDesk's own.

`linkdesk db upgrade` migrates (Flask-Migrate), `linkdesk up` starts the embedded stack, and
the commands below manage demo data, users and CSV imports. None of them serves requests, so
their app is built without a secret key (`create_app(serving=False)`); Flask's `run` command,
which would serve with it, is left out: `linkdesk up` or gunicorn serve, with a key.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import IO

import click
from flask import Flask
from flask.cli import FlaskGroup, routes_command, shell_command
from sqlalchemy import select

from service import create_app


def _operator_app() -> Flask:
    """The app of an operator command: it signs nothing, so it needs no secret key."""
    return create_app(serving=False)


@click.group(
    cls=FlaskGroup,
    create_app=_operator_app,
    add_default_commands=False,
    add_version_option=False,
)
def main() -> None:
    """LinkDesk operator commands."""


main.add_command(shell_command)
main.add_command(routes_command)


@main.command("seed-demo")
@click.option("--allow-non-sqlite", is_flag=True, help="Seed a non-SQLite database anyway.")
def seed_demo(allow_non_sqlite: bool) -> None:
    """Write the demo directory and sign-ins (first run only) and print the sign-ins."""
    from service.demo import directory as demo

    try:
        created = demo.seed(allow_non_sqlite=allow_non_sqlite)
    except demo.DemoRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("Demo data written." if created else "Demo data already present; left as is.")
    for sign_in in demo.sign_ins():
        click.echo(f"  {sign_in.username:<15} {sign_in.role:<15} {sign_in.scope}")
    click.echo(f"  password for all: {demo.DEMO_PASSWORD}")


@main.command("create-user")
@click.argument("username")
@click.option("--role", required=True, help="partner, instance_admin, agent, manager or admin")
@click.option("--name", "display_name", help="Display name (defaults to the username)")
@click.option("--email")
@click.option("--console", "console_code", help="Console code (partners)")
@click.option("--instance", "instance_codes", multiple=True, help="Instance code (admins)")
@click.password_option(help="Prompted for when not given")
def create_user(
    username: str,
    role: str,
    display_name: str | None,
    email: str | None,
    console_code: str | None,
    instance_codes: tuple[str, ...],
    password: str,
) -> None:
    """Create a user with a role and its scope."""
    from service import admin
    from service.directory import normalise_code
    from service.extensions import db
    from service.models import Console, Instance

    console = None
    if console_code:
        console = db.session.execute(
            select(Console).where(Console.code == normalise_code(console_code))
        ).scalar_one_or_none()
        if console is None:
            raise click.BadParameter(f"no console {console_code!r}", param_hint="--console")
    codes = [normalise_code(c) for c in instance_codes]
    instances = list(db.session.execute(select(Instance).where(Instance.code.in_(codes))).scalars())
    unknown = sorted(set(codes) - {i.code for i in instances})
    if unknown:
        raise click.BadParameter(f"no instance {', '.join(unknown)}", param_hint="--instance")
    with _refusals_reported():
        user = admin.create_user(
            username,
            role=role,
            password=password,
            actor="cli",
            display_name=display_name,
            email=email,
            console=console,
            instances=instances,
        )
    click.echo(f"Created {user.role.value} {user.username}.")


@main.command("set-password")
@click.argument("username")
@click.password_option(help="Prompted for when not given")
def set_password(username: str, password: str) -> None:
    """Give a user a new password, signing them out everywhere."""
    from service import admin

    with _refusals_reported():
        ended = admin.reset_password(admin.find_user(username), password, actor="cli")
    click.echo(f"Password of {username} changed; {_sessions(ended)} ended.")


@main.command("deactivate-user")
@click.argument("username")
def deactivate_user(username: str) -> None:
    """Stop a user from signing in or using their API tokens, and end their sessions."""
    from service import admin

    with _refusals_reported():
        user = admin.find_user(username)
        if not user.active:
            click.echo(f"{username} is already deactivated.")
            return
        ended = admin.set_active(user, False, actor="cli")
    click.echo(f"Deactivated {username}; {_sessions(ended)} ended, API tokens refused.")


@main.command("activate-user")
@click.argument("username")
def activate_user(username: str) -> None:
    """Let a deactivated user sign in and use their API tokens again."""
    from service import admin

    with _refusals_reported():
        user = admin.find_user(username)
        if user.active:
            click.echo(f"{username} is already active.")
            return
        admin.set_active(user, True, actor="cli")
    click.echo(f"Activated {username}.")


@contextmanager
def _refusals_reported() -> Iterator[None]:
    """Commit what the block did, or roll it back and report the refusal as the command's
    error."""
    from service.errors import ServiceError
    from service.extensions import db

    try:
        yield
    except ServiceError as exc:
        db.session.rollback()
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.fields.items())
        raise click.ClickException(f"{exc.message} {details}".strip()) from None
    db.session.commit()


def _sessions(count: int) -> str:
    return f"{count} session" + ("" if count == 1 else "s")


@main.command("reset-two-factor")
@click.argument("username")
def reset_two_factor(username: str) -> None:
    """Turn off a user's two-factor sign-in (for a lost app and lost recovery codes)."""
    from service import admin, mfa
    from service.extensions import db

    with _refusals_reported():
        user = admin.find_user(username)
    if not mfa.reset(user, actor="cli"):
        click.echo(f"{username} has no two-factor sign-in.")
        return
    db.session.commit()
    click.echo(f"Two-factor sign-in of {username} is off; they sign in with their password.")


@main.command("import-csv")
@click.argument("kind", type=click.Choice(["consoles", "instances", "relationships"]))
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
def import_csv(kind: str, file: IO[str]) -> None:
    """Create or update consoles, instances or relationships from a CSV file, all or nothing.

    Columns: consoles `code,name,type`; instances `code,name`;
    relationships `console,instance,access_enabled,linked`.
    """
    from service import admin

    result = admin.import_csv(kind, file, actor="cli:import-csv")
    if result.errors:
        for error in result.errors:
            click.echo(error, err=True)
        raise click.ClickException(f"Nothing imported: {len(result.errors)} error(s).")
    click.echo(f"Imported {result.rows} {kind} row(s).")


@main.command("up", with_appcontext=False)
def up() -> None:
    """Start the embedded stack: Temporal dev server, worker and web app (Ctrl-C stops it)."""
    from service.embedded import run

    raise SystemExit(run())


@main.command("demo-history")
@click.option(
    "--requests",
    "count",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="How many requests to write.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=1095,
    show_default=True,
    help="How many days the filings span, ending the day before --until.",
)
@click.option(
    "--until",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="The first day (UTC) after the history; every request is resolved before it. "
    "Default: today.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random draws.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=5000,
    show_default=True,
    help="Requests written per transaction.",
)
@click.option("--allow-non-sqlite", is_flag=True, help="Write into a non-SQLite database anyway.")
def demo_history(
    count: int,
    days: int,
    until: datetime | None,
    seed: int,
    batch_size: int,
    allow_non_sqlite: bool,
) -> None:
    """Fill the projection with synthetic historical requests, for demos and benchmarks.

    Every request is terminal and was resolved before --until, so none needs a workflow.
    Uses the directory, users, approval policy, SLA targets and calendar already there; run
    `linkdesk seed-demo` first on an empty database. The same seed, span and directory give
    the same history.
    """
    from service.demo import history

    options = history.HistoryOptions(
        requests=count,
        days=days,
        until=until.date() if until else None,
        seed=seed,
        batch_size=batch_size,
        allow_non_sqlite=allow_non_sqlite,
    )
    try:
        plan = history.prepare(options)
    except history.HistoryRefused as exc:
        raise click.ClickException(str(exc)) from None
    with click.progressbar(length=count, label="Writing history") as bar:
        summary = history.write(plan, progress=bar.update)
    click.echo(
        f"Wrote {summary.requests:,} requests ({summary.first_public_id} to "
        f"{summary.last_public_id}, filed {summary.since} to {summary.until - timedelta(days=1)}), "
        f"{summary.tasks:,} tasks and {summary.events:,} timeline events "
        f"in {summary.seconds:.1f} s ({summary.requests / max(summary.seconds, 1e-9):,.0f} "
        "requests/s)."
    )
    shares = ", ".join(
        f"{status} {n / summary.requests:.1%}" for status, n in summary.outcomes.most_common()
    )
    click.echo(f"Outcomes: {shares}.")
    if summary.sla_counted:
        click.echo(
            f"SLA met by {summary.sla_met / summary.sla_counted:.1%} of the "
            f"{summary.sla_counted:,} requests it counts."
        )
