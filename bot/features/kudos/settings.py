"""``/kudos settings`` (admins): the quota, the weekly cap per receiver, the values, the kudos
channel and whether kudos are posted where they are given."""

from __future__ import annotations

import re
from typing import Any

from bot.chat import ChannelMention, Inline, Response, Text, marked, reply, text
from bot.core import Context
from bot.errors import UserError
from bot.features.kudos.rules import Rules, rules_of
from storage.kudos import KudosSettings

MAX_QUOTA = 100
MAX_WEEKLY = 50
MAX_VALUES = 25  # a Discord select's options
_VALUE_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,31}$")
OFF = ("none", "off", "-")
_CHANNEL_LINK = re.compile(r"<#[^|>]+\|([^>]+)>")


def describe(rules: Rules) -> Text:
    where: list[Inline | str] = ["where each one is given"]
    if rules.channel_id and not rules.post_where_given:
        where = ["in ", ChannelMention(rules.channel_id)]
    elif rules.channel_id:
        where = ["where each one is given (in ", ChannelMention(rules.channel_id), " from a DM)"]
    return text(
        f"Rules: {rules.daily_quota} kudos a day per giver (reset at each giver's midnight), "
        f"at most {rules.weekly_per_receiver} a week from one person to the same person; "
        f"values {rules.values_text()}; kudos are posted ",
        *where,
        ".",
    )


async def change(ctx: Context, args: dict[str, Any]) -> Response:
    setting: str | None = args.get("setting")
    to: str | None = args.get("to")
    if setting is None:
        rules = await rules_of(ctx.session, ctx.workspace.id)
        return reply(
            describe(rules),
            marked(
                "Change one with `/kudos settings quota 5`, `weekly 3`, "
                "`values #ownership #craft`, `channel #kudos` (or `none`), "
                "`where channel|given`."
            ),
        )
    if not to:
        raise UserError(f"Give the new {setting}, e.g. `{_EXAMPLES[setting]}`.")
    row = await ctx.session.get(KudosSettings, ctx.workspace.id)
    if row is None:
        row = KudosSettings(workspace_id=ctx.workspace.id, updated_at=ctx.now)
        defaults = Rules()
        row.daily_quota = defaults.daily_quota
        row.weekly_per_receiver = defaults.weekly_per_receiver
        row.values = list(defaults.values)
        row.channel_id = None
        row.post_where_given = False
        ctx.session.add(row)
    said = await _apply(ctx, row, setting, to.strip())
    row.updated_at = ctx.now
    return reply(marked(said))


_EXAMPLES = {
    "quota": "/kudos settings quota 5",
    "weekly": "/kudos settings weekly 3",
    "values": "/kudos settings values #ownership #craft #helpfulness",
    "channel": "/kudos settings channel #kudos",
    "where": "/kudos settings where channel",
}


def _number(setting: str, to: str, highest: int) -> int:
    try:
        number = int(to)
    except ValueError:
        number = 0
    if not 1 <= number <= highest:
        raise UserError(
            f'The {setting} is a whole number from 1 to {highest}, not "{to}". '
            f"Example: `{_EXAMPLES[setting]}`."
        )
    return number


def parse_values(to: str) -> list[str]:
    if to.lower() in OFF:
        return []
    found: list[str] = []
    # Slack turns "#craft" into a channel link when such a channel exists: its label counts.
    to = _CHANNEL_LINK.sub(lambda m: "#" + m.group(1), to)
    for word in to.replace(",", " ").split():
        name = word.removeprefix("#").lower()
        if not _VALUE_NAME.match(name):
            raise UserError(
                f'"{word}" is not a value name: letters, digits, - and _, up to 32, like '
                "#ownership."
            )
        if name not in found:
            found.append(name)
    if len(found) > MAX_VALUES:
        raise UserError(f"At most {MAX_VALUES} values (a menu holds no more); {len(found)} given.")
    return found


async def _apply(ctx: Context, row: KudosSettings, setting: str, to: str) -> str:
    if setting == "quota":
        row.daily_quota = _number("quota", to, MAX_QUOTA)
        return f"Saved: each member may give {row.daily_quota} kudos a day (their own day)."
    if setting == "weekly":
        row.weekly_per_receiver = _number("weekly", to, MAX_WEEKLY)
        return (
            f"Saved: one member may give the same person at most {row.weekly_per_receiver} "
            "kudos a week."
        )
    if setting == "values":
        row.values = parse_values(to)
        if not row.values:
            return "Saved: no values; kudos take no #value now."
        return "Saved: the values are " + " ".join(f"#{v}" for v in row.values) + "."
    if setting == "channel":
        if to.lower() in OFF:
            row.channel_id = None
            return "Saved: no kudos channel; each kudos is posted where it is given."
        channel = await ctx.channel_to_post(to)
        row.channel_id = channel.external_id
        return f"Saved: kudos are posted in #{channel.name}."
    wanted = to.lower()
    if wanted not in ("channel", "given"):
        raise UserError(
            f'"{to}" is not a choice: `where channel` posts every kudos in the kudos channel, '
            "`where given` posts each where it is given."
        )
    row.post_where_given = wanted == "given"
    if row.post_where_given:
        return "Saved: each kudos is posted where it is given."
    if row.channel_id is None:
        return (
            "Saved: kudos go to the kudos channel, but none is set yet, so for now each is "
            "posted where it is given; set one with `/kudos settings channel #kudos`."
        )
    return "Saved: every kudos is posted in the kudos channel."
