"""``/kudos`` handlers, the give form and the "Give kudos" user shortcut."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete

from bot import directory
from bot.chat import (
    Choice,
    Code,
    Form,
    OpenForm,
    Response,
    Section,
    SelectField,
    TextField,
    marked,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.commands.parse import MemberRef
from bot.core import Context, Core, Shortcut
from bot.errors import UserError
from bot.events import FormSubmission, ShortcutInvocation
from bot.features.kudos import board as boards
from bot.features.kudos import give as giving
from bot.features.kudos import render, settings
from bot.features.kudos.rules import Rules, allowance, rules_of
from bot.features.kudos.spec import GIVE_EXAMPLE, KUDOS, LINE_USAGE
from storage.kudos import KudosOptOut

GIVE_FORM = "kudos-give"
GIVE_KUDOS = Shortcut(
    "give_kudos", "Give kudos", on="user", description="Give kudos: thank a teammate"
)


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        rules = await rules_of(ctx.session, ctx.workspace.id)
        blocks = list(helptext.topic(core.specs.values(), "kudos").blocks)
        blocks.append(Section(text("One line: ", Code(f"/kudos {LINE_USAGE}"))))
        blocks.append(Section(text("Example: ", Code(GIVE_EXAMPLE))))
        blocks.append(Section(settings.describe(rules)))
        return reply(*blocks)

    core.add_command(
        KUDOS,
        {
            "give": give_line,
            "left": left,
            "board": show_board,
            "history": show_history,
            "optout": opt_out,
            "optin": opt_in,
            "settings": settings.change,
            "help": show_help,
        },
    )
    core.add_form(GIVE_FORM, give_form)
    core.add_shortcut(GIVE_KUDOS, give_shortcut)


async def _given(ctx: Context, parsed: giving.KudosInput) -> Response:
    given = await giving.give(ctx, parsed)
    return reply(*render.confirmation(given, ctx.now).blocks)


async def give_line(ctx: Context, args: dict[str, Any]) -> Response:
    line: str | None = args.get("line")
    if not line:
        rules = await rules_of(ctx.session, ctx.workspace.id)
        return OpenForm(give_form_for(rules, None))
    return await _given(ctx, giving.parse_line(line))


def give_form_for(rules: Rules, target: str | None, name: str = "") -> Form:
    """The short form: who (unless the shortcut already named them), why, value, private."""
    fields: list[Any] = []
    if target is None:
        fields.append(TextField("who", "Who? (@alice @bob)", max_length=500))
    fields.append(
        TextField(
            "reason",
            "What for?",
            multiline=True,
            max_length=giving.MAX_REASON,
            placeholder="Shipped the export on time",
        )
    )
    if rules.values:
        choices = tuple(Choice(f"#{v}", v) for v in rules.values)
        fields.append(SelectField("value", "Value (optional)", choices, required=False))
    fields.append(
        SelectField(
            "private",
            "Who sees it?",
            (
                Choice("Everyone: posted in the kudos channel", "no"),
                Choice("Private: only them and their team leads", "yes"),
            ),
            initial=("no",),
        )
    )
    title = f"Kudos for {name}" if name else "Give kudos"
    return Form(GIVE_FORM, title[:45], tuple(fields), submit_label="Give", state=target or "")


def _one(values: dict[str, str | list[str]], name: str) -> str:
    value = values.get(name, "")
    if isinstance(value, list):
        return value[0] if value else ""
    return value


async def give_form(ctx: Context, event: FormSubmission) -> Response:
    values = event.values
    if event.state:
        receivers: tuple[MemberRef, ...] = (MemberRef(f"<@{event.state}>", event.state),)
    else:
        named = giving.parse_line(_one(values, "who"))
        if named.reason or named.value:
            raise UserError("Name people only, as @alice @bob.", field="who")
        receivers = named.receivers
    parsed = giving.KudosInput(
        receivers,
        _one(values, "reason").strip(),
        _one(values, "value") or None,
        private=_one(values, "private") == "yes",
    )
    return await _given(ctx, parsed)


async def give_shortcut(ctx: Context, event: ShortcutInvocation) -> Response:
    """ "Give kudos" on a member: checked now (not yourself, not a bot, a kudos left today),
    then the form."""
    target = event.target_user_id
    if not target:
        raise UserError("Choose a person to give kudos to.")
    ref = MemberRef(f"<@{target}>", target)
    [receiver] = await giving.resolve_receivers(ctx, (ref,))
    rules = await rules_of(ctx.session, ctx.workspace.id)
    await giving.check_limits(ctx, rules, [receiver])
    return OpenForm(give_form_for(rules, receiver.platform_user_id, render.name_of(receiver)))


async def left(ctx: Context, args: dict[str, Any]) -> Response:
    rules = await rules_of(ctx.session, ctx.workspace.id)
    have = await allowance(ctx.session, rules, ctx.member, ctx.now)
    lines = [render.left_line(have, ctx.now)]
    lines.append(
        f"You can give one person up to {rules.weekly_per_receiver} kudos a week "
        "(Monday to Sunday, your time)."
    )
    if ctx.member.timezone is None:
        lines.append("Your day is counted in UTC: set your zone with `/syncup timezone Area/City`.")
    return reply(*(marked(line) for line in lines))


async def show_board(ctx: Context, args: dict[str, Any]) -> Response:
    rules = await rules_of(ctx.session, ctx.workspace.id)
    period, value = boards.board_filters(args.get("period"), args.get("value"), rules)
    shown = await boards.board(ctx.session, ctx.workspace.id, ctx.member, ctx.now, period, value)
    return reply(*shown.blocks)


async def show_history(ctx: Context, args: dict[str, Any]) -> Response:
    who = ctx.member
    if args.get("who") is not None:
        who = await directory.resolve_member(
            ctx.session, ctx.workspace, args["who"], ctx.core.directory, now=ctx.now
        )
    shown = await boards.history(ctx.session, ctx.workspace.id, ctx.member, who, ctx.now)
    return reply(*shown.blocks)


async def opt_out(ctx: Context, args: dict[str, Any]) -> Response:
    found = await ctx.session.get(KudosOptOut, ctx.member.id)
    if found is None:
        ctx.session.add(KudosOptOut(member_id=ctx.member.id, opted_out_at=ctx.now))
    return reply(
        marked(
            "You are off the kudos boards: you appear nowhere ranked, received or given. "
            "Kudos still reach you, and `/kudos history` still lists them. "
            "`/kudos optin` puts you back."
        )
    )


async def opt_in(ctx: Context, args: dict[str, Any]) -> Response:
    await ctx.session.execute(delete(KudosOptOut).where(KudosOptOut.member_id == ctx.member.id))
    return reply(marked("You are on the kudos boards again (`/kudos optout` leaves them)."))
