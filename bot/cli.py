"""The ``syncup`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any, TextIO, TypeVar

import click

from bot import __version__
from bot.config import ConfigError, Settings, load_settings
from bot.files import open_private
from bot.logs import setup_logging

T = TypeVar("T")
EXIT_CONFIG = 2


def _settings(ctx: click.Context) -> Settings:
    try:
        settings = load_settings(ctx.obj["config"])
    except ConfigError as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    setup_logging(settings)
    return settings


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def wrapper() -> T:
        return await coro_fn()

    return asyncio.run(wrapper())


@click.group(name="syncup", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    envvar="SYNCUP_CONFIG",
    help="TOML config file (default: ./syncup.toml when present). Env: SYNCUP_CONFIG.",
)
@click.version_option(__version__, prog_name="syncup")
@click.pass_context
def cli(ctx: click.Context, config: str | None) -> None:
    """syncup: standups, pulse polls, blockers and kudos for Slack and Discord.

    With no platform configured, `syncup run` starts the console with a demo workspace.
    """
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@cli.command()
@click.option(
    "--platform",
    type=click.Choice(["console", "slack", "discord"]),
    help="Override [bot] platform (default: the one with a token, else console).",
)
@click.pass_context
def run(ctx: click.Context, platform: str | None) -> None:
    """Start the bot (the console when no platform is configured)."""
    settings = _settings(ctx)
    if platform:
        settings.bot.platform = platform  # type: ignore[assignment]
    from bot.app import App, load_adapter
    from storage.migrate import SchemaOutOfDate

    try:
        adapter = load_adapter(settings)
    except ConfigError as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    app = App(settings, adapter)
    try:
        code = _run(app.run)
    except SchemaOutOfDate as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(1)
    except ConfigError as exc:  # found at start, e.g. a token_encryption_key that is not the one
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    except KeyboardInterrupt:
        code = 130
    ctx.exit(code)


# -- db -----------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """Database schema: upgrade, downgrade, current."""


def _with_engine(ctx: click.Context, action: Callable[[Any], Awaitable[T]]) -> T:
    settings = _settings(ctx)
    from storage.db import Database

    async def go() -> T:
        database = Database(settings.database.url)
        try:
            return await action(database.engine)
        finally:
            await database.dispose()

    return _run(go)


@db.command()
@click.argument("revision", default="head")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Upgrade the schema to REVISION (default: the latest)."""
    from storage import migrate

    _with_engine(ctx, lambda engine: migrate.upgrade(engine, revision))
    click.echo(f"Database upgraded to {revision}.")


@db.command()
@click.argument("revision")
@click.pass_context
def downgrade(ctx: click.Context, revision: str) -> None:
    """Downgrade the schema to REVISION (`base` removes every table)."""
    from storage import migrate

    _with_engine(ctx, lambda engine: migrate.downgrade(engine, revision))
    click.echo(f"Database downgraded to {revision}.")


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Show the schema revision of the database and the latest one."""
    from storage import migrate

    rev = _with_engine(ctx, migrate.current_revision)
    head = migrate.head_revision()
    state = "up to date" if rev == head else "run `syncup db upgrade`"
    click.echo(f"current: {rev or 'none (empty database)'}\nlatest:  {head}\n{state}")


# -- outbox -------------------------------------------------------------------------------------


@cli.group()
def outbox() -> None:
    """Outgoing messages: list pending and dead-lettered ones, retry dead letters."""


@outbox.command("list")
@click.option(
    "--status",
    type=click.Choice(["pending", "dead", "all"]),
    default="all",
    show_default=True,
    help="Which messages to show (sent ones are not listed).",
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_context
def outbox_list(ctx: click.Context, status: str, limit: int) -> None:
    """List pending and dead-lettered messages, oldest first."""
    from bot.delivery import admin
    from storage.db import Database

    settings = _settings(ctx)

    async def go() -> list[admin.OutboxEntry]:
        database = Database(settings.database.url)
        try:
            return await admin.list_messages(database, status, limit)
        finally:
            await database.dispose()

    rows = _run(go)
    if not rows:
        click.echo(f"No {status if status != 'all' else 'pending or dead'} messages.")
        return
    header = f"{'id':>6}  {'status':<8} {'method':<9} {'tries':>5}  {'next try (UTC)':<19}  error"
    click.echo(header)
    for row in rows:
        when = row.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S") if row.next_attempt_at else "-"
        error = (row.last_error or "").replace("\n", " ")[:80]
        click.echo(
            f"{row.id:>6}  {row.status:<8} {row.method:<9} {row.attempts:>5}  {when:<19}  {error}"
        )


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-dead", is_flag=True, help="Retry every dead-lettered message.")
@click.pass_context
def outbox_retry(ctx: click.Context, ids: tuple[int, ...], all_dead: bool) -> None:
    """Send dead-lettered messages IDS again (or all of them with --all-dead)."""
    if not ids and not all_dead:
        raise click.UsageError("Name the message ids to retry, or pass --all-dead.")
    from bot.delivery import admin
    from storage.db import Database

    settings = _settings(ctx)

    async def go() -> admin.RetryResult:
        database = Database(settings.database.url)
        try:
            return await admin.retry_dead(
                database, None if all_dead else list(ids), datetime.now(UTC)
            )
        finally:
            await database.dispose()

    result = _run(go)
    click.echo(f"{result.retried} message(s) queued again.")
    if result.not_dead:
        click.echo(f"Not dead-lettered, left alone: {', '.join(map(str, result.not_dead))}")


# -- export -------------------------------------------------------------------------------------


class _DateParam(click.ParamType):
    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2026-03-01.", param, ctx)


def _format_and_output(command: Callable[..., None]) -> Callable[..., None]:
    """The ``--format`` and ``--output`` options every export takes."""
    command = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, writable=True, allow_dash=True),
        default="-",
        help="File to write (default: standard output).",
    )(command)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(["csv", "json"]),
        default="csv",
        show_default=True,
        help="CSV with a header row, or a JSON array of objects.",
    )(command)


@cli.group()
def export() -> None:
    """Export data for the operator: standup answers and polls (CSV or JSON)."""


@export.command("standups")
@click.option(
    "--since",
    type=_DateParam(),
    required=True,
    help="First run date to include (YYYY-MM-DD, the participants' local date).",
)
@click.option("--until", type=_DateParam(), help="Last run date to include (default: all).")
@_format_and_output
@click.pass_context
def export_standups(
    ctx: click.Context, since: date, until: date | None, fmt: str, output: str
) -> None:
    """Standup answers, one row per answer, plus a row for each prompt without one.

    Columns: workspace, standup, run_date, member, member_platform_id, question_index,
    question, answer, answered_at (UTC), status (answered, pending, skipped, away,
    unreachable). Rows are streamed, so large exports use little memory. CSV cells that a
    spreadsheet would run as a formula get a leading apostrophe; JSON is verbatim.
    """
    if until is not None and until < since:
        raise click.BadParameter(
            f"{until.isoformat()} is before --since {since.isoformat()}.",
            param_hint="'--until'",
        )
    from bot.export import export_standups as run_export

    _export(ctx, output, lambda session, out: run_export(session, out, since, until, fmt))  # type: ignore[arg-type]


@export.command("polls")
@click.option(
    "--since", type=_DateParam(), help="First day polls opened to include (YYYY-MM-DD, UTC)."
)
@click.option("--until", type=_DateParam(), help="Last day polls opened to include (default: all).")
@_format_and_output
@click.pass_context
def export_polls(
    ctx: click.Context, since: date | None, until: date | None, fmt: str, output: str
) -> None:
    """Polls, one row per poll and option (per value of a scale or eNPS poll, per answer of an
    open-answer poll).

    Columns: workspace, poll_id, channel, question, kind, anonymous, results, threshold,
    opens_at, closes_at, closed_at (UTC), status, answered, eligible, option_index, option,
    count, percent, score, voters. Anonymous polls have no voter data: their voters column is
    always empty, and their count, percent, score and open answers stay empty until the poll
    has closed with at least its threshold of answers. Pulse questions are not included.
    """
    if since is not None and until is not None and until < since:
        raise click.BadParameter(
            f"{until.isoformat()} is before --since {since.isoformat()}.",
            param_hint="'--until'",
        )
    from bot.export import export_polls as run_export

    _export(ctx, output, lambda session, out: run_export(session, out, since, until, fmt))  # type: ignore[arg-type]


def _export(
    ctx: click.Context,
    output: str,
    write: Callable[[Any, TextIO], Awaitable[int]],
) -> None:
    """Run one export against the configured database, to stdout or to a file that appears
    only once it is complete."""
    from storage import migrate
    from storage.db import Database

    settings = _settings(ctx)

    async def go(out: TextIO) -> int:
        database = Database(settings.database.url)
        try:
            await migrate.ensure_schema(database.engine, auto_migrate=False)
            async with database.transaction() as session:
                return await write(session, out)
        finally:
            await database.dispose()

    try:
        if output == "-":
            count = _run(lambda: go(sys.stdout))
        else:
            # Written next to the target and renamed at the end: a failed export leaves no
            # half-written file behind.
            partial = f"{output}.partial"
            try:
                with open_private(partial, "w", encoding="utf-8", newline="") as out:
                    count = _run(lambda: go(out))
                os.replace(partial, output)
            finally:
                if os.path.exists(partial):
                    os.remove(partial)
    except migrate.SchemaOutOfDate as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(1)
    click.echo(f"Exported {count} row(s).", err=True)


# -- config -------------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Configuration: check it."""


@config.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration the way `syncup run` does; secrets are never printed."""
    settings = _settings(ctx)
    platform = settings.platform()
    click.echo(f"Configuration is valid. Platform: {platform}. Database: {_safe_url(settings)}.")


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database.url).render_as_string(hide_password=True)


def _add_platform_commands() -> None:
    """``syncup slack ...`` and ``syncup discord ...`` live with their adapters
    (``adapters.<x>.cli:group``), so that this module imports no platform SDK; a build without
    an adapter lacks its group."""
    import importlib

    for platform in ("slack", "discord"):
        try:
            module = importlib.import_module(f"adapters.{platform}.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"adapters.{platform}", f"adapters.{platform}.cli"):
                raise
            continue
        cli.add_command(module.group, platform)


_add_platform_commands()


def main() -> None:
    cli(prog_name="syncup")
