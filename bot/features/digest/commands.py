"""``/digest`` handlers: setup and edit (a form or one line), list, preview, delete, help.

A save resolves every name (teams, channel, leaders) and reports every problem at once, before
anything is written: a digest is saved whole or not at all (invariant 8)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, func, select

from bot.chat import Bold, OpenForm, Response, reply, text
from bot.commands import help as helptext
from bot.commands.spec import Permission
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import FormSubmission
from bot.features.digest import inputs
from bot.features.digest.inputs import DigestInput, parse_line, parse_values
from bot.features.digest.runtime import compose, scopes_of, trigger
from bot.features.digest.spec import DIGEST, SETUP_EXAMPLE
from bot.features.polls.options import describe_local
from bot.features.standups.commands import resolve_references
from bot.features.standups.settings import WEEKDAYS
from bot.scheduling.scheduler import next_fire_time
from storage.digest import Digest, DigestLeader, DigestTeam
from storage.models import Channel, Member, Standup
from storage.raci import RaciArea


def register(core: Core, base_url: Callable[[], str]) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        return reply(*helptext.topic(core.specs.values(), "digest").blocks)

    async def preview(ctx: Context, args: dict[str, Any]) -> Response:
        digest = await find_digest(ctx, args["digest"])
        teams = await compose(ctx.session, digest, ctx.now, base_url())
        if not teams:
            raise UserError(
                f'The digest "{digest.name}" has no team left; add one with /digest edit.'
            )
        blocks: list[Any] = [text("Preview, only to you: ", Bold(digest.name), " as of now.")]
        for team in teams:
            blocks += list(team.message.blocks)
        return reply(*blocks)

    core.add_command(
        DIGEST,
        {
            "help": show_help,
            "setup": setup,
            "edit": edit,
            "list": list_digests,
            "preview": preview,
            "delete": delete_digest,
        },
    )
    core.add_form(inputs.FORM_ID, save_form)


# --- lookups -------------------------------------------------------------------------------------


async def find_digest(ctx: Context, name: str) -> Digest:
    rows = list(
        await ctx.session.scalars(
            select(Digest).where(Digest.workspace_id == ctx.workspace.id).order_by(Digest.name)
        )
    )
    wanted = name.strip().strip('"').lower()
    for digest in rows:
        if digest.name.lower() == wanted:
            return digest
    names = [d.name for d in rows]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.5)
    if close:
        hint = f' Did you mean "{close[0]}"?'
    elif names:
        hint = f" Digests: {', '.join(names)}."
    else:
        hint = " There are none yet; create one with `/digest setup`."
    raise UserError(f'No digest named "{name}".{hint}')


async def resolve_teams(ctx: Context, names: tuple[str, ...]) -> list[tuple[str, int]]:
    """Each name as ("standup", id) or ("area", id): a standup's name, or a RACI area's name
    or key; ``standup:`` or ``area:`` in front says which when both have it."""
    standups = {
        s.name.lower(): s.id
        for s in await ctx.session.scalars(
            select(Standup).where(Standup.workspace_id == ctx.workspace.id)
        )
    }
    areas: dict[str, int] = {}
    for area in await ctx.session.scalars(
        select(RaciArea).where(RaciArea.workspace_id == ctx.workspace.id)
    ):
        areas[area.name.lower()] = area.id
        areas.setdefault(area.key.lower(), area.id)
    out: list[tuple[str, int]] = []
    for raw in names:
        kind, _, rest = raw.partition(":")
        only = kind.strip().lower() if rest and kind.strip().lower() in ("standup", "area") else ""
        name = (rest if only else raw).strip().lower()
        if only != "area" and name in standups:
            found = ("standup", standups[name])
        elif only != "standup" and name in areas:
            found = ("area", areas[name])
        else:
            known = sorted({*standups, *areas})
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
            if close:
                hint = f' Did you mean "{close[0]}"?'
            elif known:
                hint = " A team is a standup or a RACI area: " + ", ".join(known[:10]) + "."
            else:
                hint = " There is no standup or RACI area yet (/standup setup, /raci setup)."
            raise UserError(f'No standup or RACI area named "{raw}".{hint}')
        if found not in out:
            out.append(found)
    return out


# --- setup and edit ------------------------------------------------------------------------------


def _here(ctx: Context) -> str:
    origin = ctx.event.origin
    name = getattr(origin, "channel_name", "")
    return f"#{name}" if name else ""


async def setup(ctx: Context, args: dict[str, Any]) -> Response:
    line: str | None = args.get("line")
    zone = ctx.member.timezone or "UTC"
    if not line:
        return OpenForm(inputs.form({"timezone": zone, "channel": _here(ctx)}))
    try:
        values = parse_line(line, with_name=True)
    except UserError as exc:
        raise UserError(f"{exc.message} Example: `{SETUP_EXAMPLE}`") from None
    values = {**inputs.DEFAULTS, "timezone": zone, "leaders": "", **values}
    if "channel" not in values and _here(ctx):
        values["channel"] = _here(ctx)
    errors: dict[str, str] = {}
    return await save(ctx, parse_values(values, errors=errors), None, errors)


async def edit(ctx: Context, args: dict[str, Any]) -> Response:
    digest = await find_digest(ctx, args["digest"])
    line: str | None = args.get("line")
    if not line:
        return OpenForm(inputs.form(await form_values(ctx, digest), state=str(digest.id)))
    errors: dict[str, str] = {}
    data = parse_values(parse_line(line, with_name=False), partial=True, errors=errors)
    return await save(ctx, data, digest, errors)


async def save_form(ctx: Context, event: FormSubmission) -> Response:
    ctx.require(Permission.TEAM_LEAD)
    digest: Digest | None = None
    if event.state:
        digest = await ctx.session.get(Digest, int(event.state)) if event.state.isdigit() else None
        if digest is None or digest.workspace_id != ctx.workspace.id:
            raise UserError(
                "That digest was deleted meanwhile; create it again with /digest setup."
            )
    errors: dict[str, str] = {}
    return await save(ctx, parse_values(event.values, errors=errors), digest, errors)


async def form_values(ctx: Context, digest: Digest) -> dict[str, str]:
    channel = await ctx.session.get(Channel, digest.channel_id)
    leaders = await ctx.session.scalars(
        select(Member.display_name)
        .join(DigestLeader, DigestLeader.member_id == Member.id)
        .where(DigestLeader.digest_id == digest.id)
        .order_by(Member.display_name)
    )
    return {
        "name": digest.name,
        "teams": ", ".join(s.name for s in await scopes_of(ctx.session, digest)),
        "channel": f"#{channel.name}" if channel else "",
        "day": WEEKDAYS[digest.day_of_week - 1],
        "time": digest.time_of_day,
        "timezone": digest.timezone,
        "sections": ", ".join(digest.sections),
        "leaders": " ".join(f"@{name}" for name in leaders),
    }


async def save(
    ctx: Context, data: DigestInput, digest: Digest | None, errors: dict[str, str]
) -> Response:
    """Resolve every name, then write everything or nothing (``errors``: the fields' problems
    found so far, reported with the names that do not resolve)."""
    teams: list[tuple[str, int]] | None = None
    if data.teams is not None:
        try:
            teams = await resolve_teams(ctx, data.teams)
        except UserError as exc:
            errors["teams"] = exc.message
    channel: Channel | None = None
    refs: dict[str, str | list[str]] = {}
    if data.channel is not None:
        refs["channel"] = data.channel
    if data.leaders:
        refs["participants"] = data.leaders
    found_channel, leaders, _ = await resolve_references(ctx, refs, errors)
    if "participants" in errors:
        errors["leaders"] = errors.pop("participants")
    channel = found_channel
    if data.name is not None:
        clash = await ctx.session.scalar(
            select(Digest.id).where(
                Digest.workspace_id == ctx.workspace.id,
                func.lower(Digest.name) == data.name.lower(),
                Digest.id != (digest.id if digest else -1),
            )
        )
        if clash is not None:
            errors["name"] = f'A digest named "{data.name}" exists already; pick another name.'
    if errors:
        raise UserError(inputs.summary(errors), errors=errors)
    created = digest is None
    if digest is None:
        digest = Digest(workspace_id=ctx.workspace.id, owner_id=ctx.member.id, created_at=ctx.now)
    if data.name is not None:
        digest.name = data.name
    if channel is not None:
        digest.channel_id = channel.id
    for field, value in (
        ("day_of_week", data.day_of_week),
        ("time_of_day", data.time_of_day),
        ("timezone", data.timezone),
    ):
        if value is not None:
            setattr(digest, field, value)
    if data.sections is not None:
        digest.sections = list(data.sections)
    digest.updated_at = ctx.now
    if created:
        ctx.session.add(digest)
    await ctx.session.flush()
    if teams is not None:
        await ctx.session.execute(delete(DigestTeam).where(DigestTeam.digest_id == digest.id))
        for n, (kind, row_id) in enumerate(teams):
            ctx.session.add(
                DigestTeam(
                    digest_id=digest.id,
                    standup_id=row_id if kind == "standup" else None,
                    area_id=row_id if kind == "area" else None,
                    position=n,
                )
            )
    if data.leaders is not None:
        await ctx.session.execute(delete(DigestLeader).where(DigestLeader.digest_id == digest.id))
        for member in leaders:
            ctx.session.add(DigestLeader(digest_id=digest.id, member_id=member.id))
    await ctx.session.flush()
    ctx.schedules_changed = True
    return reply(await describe(ctx, digest, "Created" if created else "Saved"))


async def describe(ctx: Context, digest: Digest, verb: str = "") -> Any:
    channel = await ctx.session.get(Channel, digest.channel_id)
    scopes = await scopes_of(ctx.session, digest)
    leaders = list(
        await ctx.session.scalars(
            select(Member.display_name)
            .join(DigestLeader, DigestLeader.member_id == Member.id)
            .where(DigestLeader.digest_id == digest.id)
            .order_by(Member.display_name)
        )
    )
    fire = next_fire_time(trigger(digest), ctx.now)
    when = describe_local(fire, digest.timezone) if fire is not None else "none"
    day = WEEKDAYS[digest.day_of_week - 1].capitalize()
    teams = ", ".join(
        f"{s.name} ({'standup' if s.kind == 'standup' else 'RACI area'})" for s in scopes
    )
    return text(
        f"{verb} the digest " if verb else "",
        Bold(digest.name),
        f": {teams or 'no team'}; to #{channel.name if channel else '?'} every {day} at "
        f"{digest.time_of_day} {digest.timezone}; sections: {', '.join(digest.sections)}"
        + (f"; also by DM to {', '.join('@' + n for n in leaders)}" if leaders else "")
        + f". Next: {when}.",
    )


async def list_digests(ctx: Context, args: dict[str, Any]) -> Response:
    rows = list(
        await ctx.session.scalars(
            select(Digest).where(Digest.workspace_id == ctx.workspace.id).order_by(Digest.name)
        )
    )
    if not rows:
        return reply("No digests yet. A team lead can create one with `/digest setup`.")
    return reply(text(Bold(f"Digests ({len(rows)})")), *[await describe(ctx, d) for d in rows])


async def delete_digest(ctx: Context, args: dict[str, Any]) -> Response:
    digest = await find_digest(ctx, args["digest"])
    name = digest.name
    await ctx.session.delete(digest)
    await ctx.session.flush()
    ctx.schedules_changed = True
    return reply(text("Deleted the digest ", Bold(name), "; it will not go out again."))
