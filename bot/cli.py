"""The ``syncup`` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from bot import __version__
from bot.config import ConfigError, Settings, check_platform, load_settings
from bot.logs import setup_logging

T = TypeVar("T")
EXIT_CONFIG = 2
EXIT_FAILED = 1


class OperatorFailure(click.ClickException):
    """One line on stderr (``syncup: what is wrong, what to do``) and exit code 1."""

    exit_code = EXIT_FAILED

    def show(self, file: Any = None) -> None:
        click.echo(f"syncup: {self.message}", err=True)


class _OperatorGroup(click.Group):
    """The root group: every command's database, migration and file problems reach the operator
    as one line (storage.errors words them), not as a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            from storage.errors import describe

            settings = (ctx.obj or {}).get("settings")
            url = settings.database.url if settings is not None else ""
            message = describe(exc, url)
            if message is None:
                raise
            raise OperatorFailure(message) from None


def _settings(ctx: click.Context) -> Settings:
    try:
        settings = load_settings(ctx.obj["config"])
    except ConfigError as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    ctx.obj["settings"] = settings
    setup_logging(settings)
    return settings


def _run(coro_fn: Callable[[], Awaitable[T]]) -> T:
    async def wrapper() -> T:
        return await coro_fn()

    return asyncio.run(wrapper())


@click.group(
    name="syncup", cls=_OperatorGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
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
    type=click.Choice(["console", "slack", "discord", "teams"]),
    help="Override [bot] platform (default: the one with a token, else console).",
)
@click.pass_context
def run(ctx: click.Context, platform: str | None) -> None:
    """Start the bot (the console when no platform is configured)."""
    settings = _settings(ctx)
    if platform:
        settings.bot.platform = platform  # type: ignore[assignment]
    from bot.app import App, load_adapter

    try:
        check_platform(settings)
        adapter = load_adapter(settings)
    except ConfigError as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
    app = App(settings, adapter)
    try:
        code = _run(app.run)
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
    return _with_database(ctx, lambda database: action(database.engine), check_schema=False)


def _with_database(
    ctx: click.Context, action: Callable[[Any], Awaitable[T]], *, check_schema: bool = True
) -> T:
    """``action(database)`` on the configured database; with ``check_schema``, a schema this
    syncup cannot use (empty, older, newer) is refused first with what to run."""
    settings = _settings(ctx)
    from storage import migrate
    from storage.db import Database

    async def go() -> T:
        database = Database(settings.database.url)
        try:
            if check_schema:
                await migrate.ensure_schema(database.engine, auto_migrate=False)
            return await action(database)
        finally:
            await database.dispose()

    return _run(go)


@db.command()
@click.argument("revision", default="head")
@click.pass_context
def upgrade(ctx: click.Context, revision: str) -> None:
    """Upgrade the schema to REVISION (default: head, the latest; also +N or an id such as
    0003). A REVISION older than the database's is refused: that is `db downgrade`."""
    from storage import migrate

    move = _with_engine(ctx, lambda engine: migrate.move_to(engine, revision, "upgrade"))
    _echo_move(move, "upgraded")


@db.command()
@click.argument("revision")
@click.pass_context
def downgrade(ctx: click.Context, revision: str) -> None:
    """Downgrade the schema to REVISION (an id such as 0003, -N, or `base`, which removes
    every table). A REVISION newer than the database's is refused: that is `db upgrade`."""
    from storage import migrate

    move = _with_engine(ctx, lambda engine: migrate.move_to(engine, revision, "downgrade"))
    _echo_move(move, "downgraded")


def _echo_move(move: Any, done: str) -> None:
    after = move.after or "base (empty)"
    if move.changed:
        click.echo(f"Database {done} from {move.before or 'base (empty)'} to {after}.")
    else:
        click.echo(f"Database already at {after}; nothing to do.")


@db.command()
@click.pass_context
def current(ctx: click.Context) -> None:
    """Show the schema revision of the database and the latest one."""
    from storage import migrate

    rev = _with_engine(ctx, migrate.current_revision)
    head = migrate.head_revision()
    if rev == head:
        state = "up to date"
    elif rev is not None and rev not in migrate.revisions():
        click.echo(f"current: {rev}\nlatest:  {head}")
        raise OperatorFailure(migrate.newer_schema_message(rev, head))
    else:
        state = "run `syncup db upgrade`"
    click.echo(f"current: {rev or 'none (empty database)'}\nlatest:  {head}\n{state}")


# -- outbox -------------------------------------------------------------------------------------


@cli.group()
def outbox() -> None:
    """Outgoing messages: list pending and dead-lettered ones, retry dead letters, show the
    learned send rates."""


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

    rows = _with_database(ctx, lambda database: admin.list_messages(database, status, limit))
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


@outbox.command("rates")
@click.pass_context
def outbox_rates(ctx: click.Context) -> None:
    """The rate each (workspace, method) bucket has learned from the platform's answers."""
    from bot.delivery import admin

    rows = _with_database(ctx, admin.learned_rates)
    if not rows:
        click.echo("No learned rates yet: nothing has been sent.")
        return
    click.echo(
        f"{'workspace':<14} {'method':<9} {'rate/s':>8} {'burst':>5} {'state':<11} "
        f"{'measured':>8} {'429s':>5}  updated (UTC)"
    )
    for row in rows:
        state = "cut by 429" if row.learned else "probing"
        measured = f"{row.measured:.2f}" if row.measured is not None else "-"
        when = row.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{row.workspace[:14]:<14} {row.bucket:<9} {row.rate:>8.2f} {row.burst:>5} "
            f"{state:<11} {measured:>8} {row.rate_limited:>5}  {when}"
        )


# Outbox ids are 64-bit integers in both databases.
MAX_ID = 2**63 - 1


class _OutboxId(click.ParamType):
    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_ID:
            failure = OperatorFailure(
                f'"{value}" is not an outbox message id: ids are whole numbers from 1 to '
                f"{MAX_ID}, as `syncup outbox list` shows them."
            )
            failure.exit_code = EXIT_CONFIG  # a usage error, as click's own
            raise failure
        return number


@outbox.command("retry")
@click.argument("ids", nargs=-1, type=_OutboxId())
@click.option("--all-dead", is_flag=True, help="Retry every dead-lettered message.")
@click.pass_context
def outbox_retry(ctx: click.Context, ids: tuple[int, ...], all_dead: bool) -> None:
    """Send dead-lettered messages IDS again (or all of them with --all-dead)."""
    if not ids and not all_dead:
        raise click.UsageError("Name the message ids to retry, or pass --all-dead.")
    from bot.delivery import admin

    wanted = None if all_dead else list(ids)
    result = _with_database(
        ctx, lambda database: admin.retry_dead(database, wanted, datetime.now(UTC))
    )
    click.echo(f"{result.retried} message(s) queued again.")
    left_alone = [i for i in result.not_dead if i not in result.missing]
    if left_alone:
        click.echo(f"Not dead-lettered, left alone: {', '.join(map(str, left_alone))}")
    if result.missing:
        raise OperatorFailure(
            f"No message {', '.join(map(str, result.missing))} in the outbox; "
            "`syncup outbox list --status dead` shows the ids to retry."
        )


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
    """Export data for the operator: standup answers, polls, blockers and kudos (CSV or JSON)."""


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
    from bot.export import export_polls as run_export

    _export_period(ctx, output, run_export, since, until, fmt)


@export.command("blockers")
@click.option("--since", type=_DateParam(), help="First day blockers opened to include (UTC).")
@click.option("--until", type=_DateParam(), help="Last day blockers opened to include (UTC).")
@_format_and_output
@click.pass_context
def export_blockers(
    ctx: click.Context, since: date | None, until: date | None, fmt: str, output: str
) -> None:
    """Blockers, one row per blocker opened in the period.

    Columns: workspace, blocker_id, reporter, reporter_platform_id, text, area, waiting_on,
    waiting_on_kind (member or area), severity, status, source (standup, command, message),
    source_link, created_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
    snoozed_until, last_reported_at (UTC), escalation_level.
    """
    from bot.export import export_blockers as run_export

    _export_period(ctx, output, run_export, since, until, fmt)


@export.command("kudos")
@click.option("--since", type=_DateParam(), help="First day to include (YYYY-MM-DD, UTC).")
@click.option("--until", type=_DateParam(), help="Last day to include (default: all).")
@_format_and_output
@click.pass_context
def export_kudos(
    ctx: click.Context, since: date | None, until: date | None, fmt: str, output: str
) -> None:
    """Kudos, one row per kudos and receiver.

    Columns: workspace, kudos_id, given_at (UTC), giver, giver_platform_id, receiver,
    receiver_platform_id, value, private, channel_id, reason. Private kudos are included and
    marked in the private column.
    """
    from bot.features.kudos.export import export_kudos as run_export

    _export_period(ctx, output, run_export, since, until, fmt)


def _export_period(
    ctx: click.Context,
    output: str,
    run_export: Callable[..., Awaitable[int]],
    since: date | None,
    until: date | None,
    fmt: str,
) -> None:
    """An export of what happened between ``since`` and ``until`` (days, UTC)."""
    if since is not None and until is not None and until < since:
        raise click.BadParameter(
            f"{until.isoformat()} is before --since {since.isoformat()}.",
            param_hint="'--until'",
        )
    _export(ctx, output, lambda session, out: run_export(session, out, since, until, fmt))


def _export(
    ctx: click.Context,
    output: str,
    write: Callable[[Any, TextIO], Awaitable[int]],
) -> None:
    """Run one export against the configured database, to stdout or to a file that appears
    only once it is complete."""
    from bot.output_file import atomic_output, check_output

    if output != "-":
        check_output(output)  # before reading anything

    def go(out: TextIO) -> int:
        async def action(database: Any) -> int:
            async with database.transaction() as session:
                return await write(session, out)

        return _with_database(ctx, action)

    if output == "-":
        count = go(sys.stdout)
    else:
        with atomic_output(output) as out:
            count = go(out)
    click.echo(f"Exported {count} row(s).", err=True)


# -- raci ---------------------------------------------------------------------------------------


@cli.group()
def raci() -> None:
    """The RACI matrix as a CSV file (columns area,role,who; see docs/raci.md)."""


_WORKSPACE = click.option(
    "--workspace",
    metavar="ID_OR_NAME",
    help="The workspace (its Slack/Discord id or name); needed when there is more than one.",
)


@raci.command("export")
@_WORKSPACE
@click.option("--output", default="-", metavar="FILE", help="File to write (default: stdout).")
@click.pass_context
def raci_export(ctx: click.Context, workspace: str | None, output: str) -> None:
    """Write the matrix as CSV: one row per cell (area, R/A/C/I, @member, @group or #channel)."""
    from bot.features.raci.csv_io import export_matrix, pick_workspace

    async def write(session: Any, out: TextIO) -> int:
        return await export_matrix(session, await pick_workspace(session, workspace), out)

    _export(ctx, output, write)


@raci.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@_WORKSPACE
@click.pass_context
def raci_import(ctx: click.Context, file: Path, workspace: str | None) -> None:
    """Replace the cells of every area the CSV names (creating new areas); every row is checked
    first, and a file with a bad row changes nothing."""
    from bot.features.raci.csv_io import import_matrix, pick_workspace, read_rows

    rows = read_rows(file)  # before the database: a missing file is told first

    async def action(database: Any) -> Any:
        async with database.transaction() as session:
            chosen = await pick_workspace(session, workspace)
            return await import_matrix(session, chosen, rows, datetime.now(UTC))

    result = _with_database(ctx, action)
    click.echo(
        f"Imported {result.cells} cell(s) into {result.areas} area(s) ({result.created} new).",
        err=True,
    )


# -- config -------------------------------------------------------------------------------------


@cli.group()
def config() -> None:
    """Configuration: check it."""


@config.command()
@click.pass_context
def check(ctx: click.Context) -> None:
    """Validate the configuration the way `syncup run` does (every key, and what the platform's
    adapter needs) without connecting anywhere; secrets are never printed."""
    settings = _settings(ctx)
    try:
        check_platform(settings)
    except ConfigError as exc:
        click.echo(f"syncup: {exc}", err=True)
        ctx.exit(EXIT_CONFIG)
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

    for platform in ("slack", "discord", "teams"):
        try:
            module = importlib.import_module(f"adapters.{platform}.cli")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"adapters.{platform}", f"adapters.{platform}.cli"):
                raise
            continue
        cli.add_command(module.group, platform)


_add_platform_commands()


def _add_web_commands() -> None:
    from bot.web.dashboard.cli import add_to

    add_to(cli, _with_database, OperatorFailure)


_add_web_commands()


def main() -> None:
    cli(prog_name="syncup")
