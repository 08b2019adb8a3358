"""``syncup web login-link --member alice``: a one-time dashboard sign-in link, printed once.

The member is found by platform user id or display name (case-insensitive); when the name is
in several workspaces, ``--workspace`` (its external id or name) says which."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from sqlalchemy import func, or_, select

from bot.config import Settings, public_base_url
from bot.webhooks.keys import KeyUnavailable, find_key
from storage import web_sessions
from storage.models import Member, Workspace

# Spent and expired links are deleted when a new one is made, once this old (until then a
# second use is told "used already" rather than "not valid").
KEEP_SPENT = timedelta(days=1)


class LinkRefused(Exception):
    """One line for the operator: what to change."""


async def make_link(
    database: Any, settings: Settings, member: str, workspace: str | None, now: Any
) -> str:
    if not settings.dashboard.enabled:
        raise LinkRefused("the dashboard is off ([dashboard] enabled = false)")
    try:
        find_key(settings)  # the link is useless if no session cookie can be signed
    except KeyUnavailable as exc:
        raise LinkRefused(str(exc)) from None
    wanted = member.strip().lstrip("@")
    async with database.transaction() as session:
        query = (
            select(Member, Workspace)
            .join(Workspace, Workspace.id == Member.workspace_id)
            .where(
                Workspace.uninstalled_at.is_(None),
                or_(
                    Member.platform_user_id == wanted,
                    func.lower(Member.display_name) == wanted.lower(),
                ),
            )
        )
        if workspace:
            query = query.where(
                or_(Workspace.external_id == workspace, Workspace.name == workspace)
            )
        found = (await session.execute(query)).all()
        if not found:
            where = f" in workspace {workspace}" if workspace else ""
            raise LinkRefused(
                f'no member "{wanted}"{where}; give their platform user id or display name '
                "(they must have used syncup once)"
            )
        if len({ws.id for _, ws in found}) > 1:
            names = ", ".join(sorted(ws.name or ws.external_id for _, ws in found))
            raise LinkRefused(f'"{wanted}" is in several workspaces ({names}); add --workspace')
        if len(found) > 1:
            raise LinkRefused(f'several members match "{wanted}"; give the platform user id')
        row = found[0][0]
        lifetime = timedelta(minutes=settings.dashboard.login_link_minutes)
        await web_sessions.tidy(session, now, KEEP_SPENT)
        token = await web_sessions.create_link(session, row.id, now, lifetime)
    return f"{public_base_url(settings)}/login/link/{token}"


def add_to(cli: click.Group, with_database: Any, failure: type[click.ClickException]) -> None:
    """``failure``: bot.cli's one-line ``syncup: ...`` error (passed in: no import cycle)."""

    @cli.group()
    def web() -> None:
        """The web dashboard (docs/dashboard.md)."""

    @web.command("login-link")
    @click.option("--member", required=True, help="Platform user id or display name.")
    @click.option("--workspace", default=None, help="Workspace external id or name.")
    @click.pass_context
    def login_link(ctx: click.Context, member: str, workspace: str | None) -> None:
        """Print a one-time sign-in link for MEMBER (valid [dashboard] login_link_minutes)."""
        from bot.clock import SystemClock

        async def go(database: Any) -> str:
            try:
                return await make_link(
                    database, ctx.obj["settings"], member, workspace, SystemClock().now()
                )
            except LinkRefused as exc:
                raise failure(str(exc)) from None

        url = with_database(ctx, go)
        minutes = ctx.obj["settings"].dashboard.login_link_minutes
        click.echo(url)
        click.echo(f"Open it within {minutes} minutes; it works once.", err=True)
