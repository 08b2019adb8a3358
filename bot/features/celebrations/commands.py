"""``/syncup birthday``, ``/syncup started`` and ``/syncup celebrations``.

Members set their own dates and opt out or in; the switches, the streak length and the
channel are for admins. Each change that moves a yearly post asks the scheduler to reconcile.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from bot.chat import ChannelMention, Header, Inline, Response, Text, marked, reply, text
from bot.commands.spec import Permission
from bot.core import Context
from bot.errors import UserError
from bot.features.celebrations.dates import describe_day, parse_birthday, parse_start
from bot.features.celebrations.rules import (
    MAX_STREAK,
    MIN_STREAK,
    Rules,
    profile_row,
    rules_of,
    settings_row,
)
from bot.timezones import zone as zone_info
from storage.celebrations import CelebrationProfile

OFF = ("off", "none", "-")
_SWITCH = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}


def _today(ctx: Context) -> date:
    return ctx.now.astimezone(zone_info(ctx.member.timezone or "UTC")).date()


def _no_channel_note(rules: Rules) -> str:
    if rules.channel_id:
        return ""
    return (
        " No celebrations channel is set yet, so nothing is posted until an admin sets one "
        "(`/syncup celebrations channel #team`)."
    )


async def set_birthday(ctx: Context, args: dict[str, Any]) -> Response:
    raw = str(args["date"]).strip()
    if raw.lower() in OFF:
        return await _forget(ctx, "birthday", ("birthday_month", "birthday_day"))
    month, day = parse_birthday(raw)
    row = await profile_row(ctx.session, ctx.workspace.id, ctx.member.id, ctx.now)
    row.birthday_month, row.birthday_day = month, day
    row.updated_at = ctx.now
    ctx.schedules_changed = True
    rules = await rules_of(ctx.session, ctx.workspace.id)
    said = f"Saved: your birthday is {describe_day(month, day)} (no year is kept)."
    said += " It is celebrated at 09:00 your time"
    if month == 2 and day == 29:
        said += ", on 28 February in years without a 29th"
    said += "."
    said += _status_note(rules, row, "birthdays")
    return reply(marked(said))


async def set_started(ctx: Context, args: dict[str, Any]) -> Response:
    raw = str(args["date"]).strip()
    if raw.lower() in OFF:
        return await _forget(ctx, "start date", ("started_on",))
    started = parse_start(raw, _today(ctx))
    row = await profile_row(ctx.session, ctx.workspace.id, ctx.member.id, ctx.now)
    row.started_on = started
    row.updated_at = ctx.now
    ctx.schedules_changed = True
    rules = await rules_of(ctx.session, ctx.workspace.id)
    said = (
        f"Saved: you started on {started.isoformat()}; each anniversary "
        f"({describe_day(started.month, started.day)}) is celebrated at 09:00 your time."
    )
    said += _status_note(rules, row, "anniversaries")
    return reply(marked(said))


async def _forget(ctx: Context, what: str, columns: tuple[str, ...]) -> Response:
    """Delete one of the member's dates (``off``)."""
    row = await ctx.session.get(CelebrationProfile, ctx.member.id)
    if row is None or getattr(row, columns[0]) is None:
        return reply(f"You have no {what} saved; nothing to remove.")
    for column in columns:
        setattr(row, column, None)
    row.updated_at = ctx.now
    ctx.schedules_changed = True
    return reply(f"Removed: syncup no longer knows your {what}.")


def _status_note(rules: Rules, row: CelebrationProfile, kind: str) -> str:
    if row.opted_out:
        return (
            " You opted out of celebrations, so nothing is posted (`/syncup celebrations optin`)."
        )
    if not getattr(rules, kind):
        return f" An admin has turned {kind} off in this workspace, so nothing is posted for now."
    return _no_channel_note(rules)


async def celebrations(ctx: Context, args: dict[str, Any]) -> Response:
    setting: str | None = args.get("setting")
    to = (args.get("to") or "").strip()
    if setting is None:
        return await _show(ctx)
    if setting in ("optout", "optin"):
        row = await profile_row(ctx.session, ctx.workspace.id, ctx.member.id, ctx.now)
        row.opted_out = setting == "optout"
        row.updated_at = ctx.now
        ctx.schedules_changed = True
        if row.opted_out:
            return reply(
                marked(
                    "Saved: nothing about you is celebrated (no streak, birthday or anniversary "
                    "post). Your dates are kept; `/syncup celebrations optin` brings them back, "
                    "`/syncup birthday off` and `/syncup started off` delete them."
                )
            )
        return reply("Saved: your streaks, birthday and anniversaries are celebrated again.")
    ctx.require(Permission.ADMIN)
    if not to:
        raise UserError(f"Give the new value, e.g. `{_EXAMPLES[setting]}`.")
    row = await settings_row(ctx.session, ctx.workspace.id, ctx.now)
    if setting in ("streaks", "birthdays", "anniversaries"):
        value = _SWITCH.get(to.lower())
        if value is None:
            raise UserError(f'"{to}" is not on or off. Example: `{_EXAMPLES[setting]}`.')
        setattr(row, setting, value)
        said = f"Saved: {setting} are {'celebrated' if value else 'no longer celebrated'}."
    elif setting == "streak":
        row.streak_length = _streak_length(to)
        said = (
            f"Saved: a streak is celebrated every {row.streak_length} scheduled standups answered "
            f"in a row ({row.streak_length}, {row.streak_length * 2}, ...)."
        )
    elif to.lower() in OFF:
        row.channel_id = None
        said = (
            "Saved: no celebrations channel; streaks go to each standup's channel, and "
            "birthdays and anniversaries are not posted."
        )
    else:
        channel = await ctx.channel_to_post(to)
        row.channel_id = channel.external_id
        said = f"Saved: celebrations are posted in #{channel.name}."
    row.updated_at = ctx.now
    ctx.schedules_changed = True
    return reply(marked(said))


_EXAMPLES = {
    "streaks": "/syncup celebrations streaks off",
    "birthdays": "/syncup celebrations birthdays off",
    "anniversaries": "/syncup celebrations anniversaries on",
    "streak": "/syncup celebrations streak 30",
    "channel": "/syncup celebrations channel #team",
}


def _streak_length(to: str) -> int:
    try:
        number = int(to)
    except ValueError:
        number = 0
    if not MIN_STREAK <= number <= MAX_STREAK:
        raise UserError(
            f"The streak length is a whole number of standups from {MIN_STREAK} to {MAX_STREAK}, "
            f'not "{to}". Example: `{_EXAMPLES["streak"]}`.'
        )
    return number


def _onoff(value: bool) -> str:
    return "on" if value else "off"


async def _show(ctx: Context) -> Response:
    rules = await rules_of(ctx.session, ctx.workspace.id)
    where: list[Inline | str] = ["each standup's channel (birthdays and anniversaries: nowhere)"]
    if rules.channel_id:
        where = [ChannelMention(rules.channel_id)]
    settings = text(
        f"Streaks {_onoff(rules.streaks)} (every {rules.streak_length} scheduled standups "
        f"answered in a row; out of office and holidays never break one), birthdays "
        f"{_onoff(rules.birthdays)}, anniversaries {_onoff(rules.anniversaries)}; posted in ",
        *where,
        ".",
    )
    profile = await ctx.session.get(CelebrationProfile, ctx.member.id)
    return reply(
        Header("Celebrations"),
        settings,
        _yours(profile),
        marked(
            "Admins: `/syncup celebrations streaks off`, `streak 30`, `channel #team`, "
            "`birthdays on`. Everyone: `/syncup birthday 03-14`, `/syncup started 2021-09-01`, "
            "`/syncup celebrations optout`."
        ),
    )


def _yours(profile: CelebrationProfile | None) -> Text:
    if profile is None:
        return text("You: no birthday or start date saved.")
    parts = []
    if profile.birthday_month and profile.birthday_day:
        parts.append(f"birthday {describe_day(profile.birthday_month, profile.birthday_day)}")
    if profile.started_on:
        parts.append(f"started {profile.started_on.isoformat()}")
    said = "You: " + (", ".join(parts) if parts else "no birthday or start date saved")
    if profile.opted_out:
        said += "; opted out (nothing about you is posted)"
    return text(said + ".")
