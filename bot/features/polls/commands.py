"""``/poll`` handlers (create by line or form, list, results, close, reopen, remind, help), the
vote controls' actions and the forms."""

from __future__ import annotations

import difflib
from typing import Any

from sqlalchemy import select

from bot import directory
from bot.chat import (
    Choice,
    Code,
    Form,
    OpenForm,
    Reply,
    Response,
    Section,
    SelectField,
    TextField,
    marked,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.commands.parse import ChannelRef
from bot.core import Context, Core
from bot.errors import UserError
from bot.events import ActionInvocation, FormSubmission
from bot.features.polls import ballots, reminders, render, service, vote_batch
from bot.features.polls.options import (
    DEADLINE_HELP,
    KIND_NAMES,
    LINE_USAGE,
    MAX_QUESTION_CHARS,
    MIN_THRESHOLD,
    Limits,
    describe_local,
    parse_deadline,
    parse_form,
    parse_line,
    sentence,
)
from bot.features.polls.spec import CREATE_EXAMPLE, POLL
from storage.models import Channel
from storage.polls import Poll, PollKind, ResultsVisibility

CREATE_FORM = "poll-create"


def register(core: Core) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        blocks = list(helptext.topic(core.specs.values(), "poll").blocks)
        blocks.append(Section(text("One line: ", marked(LINE_USAGE), ".")))
        blocks.append(Section(text("Example: ", Code(CREATE_EXAMPLE))))
        return reply(*blocks)

    core.add_command(
        POLL,
        {
            "help": show_help,
            "create": create,
            "list": list_polls,
            "results": results,
            "close": close,
            "reopen": reopen,
            "remind": remind,
        },
    )
    core.add_form(CREATE_FORM, save_form)
    core.add_form(render.ANSWER_FORM, save_answer)
    core.add_action(
        render.VOTE_ACTION, on_vote, batch=vote_batch.on_vote_batch, max_batch=vote_batch.MAX_VOTES
    )
    core.add_action(render.ANSWER_ACTION, on_answer_button)


def limits(ctx: Context) -> Limits:
    return Limits(
        max_options=ctx.core.max_select_options,
        platform=ctx.event.origin.platform,
        zone=service.zone_of(ctx.member),
        now=ctx.now,
    )


async def channel_here(ctx: Context) -> Channel:
    """The channel the command was typed in, where the poll will be posted; with a platform
    directory it must be one syncup can post in (a clear refusal now, not a lost poll)."""
    origin = ctx.event.origin
    if not origin.channel_id or origin.channel_id == ctx.member.dm_channel_id:
        raise UserError("Run /poll in the channel the poll is for; it is posted there.")
    if ctx.core.directory is not None:
        ref = ChannelRef(f"#{origin.channel_name or origin.channel_id}", origin.channel_id)
        return await directory.resolve_channel(
            ctx.session, ctx.workspace, ref, ctx.core.directory, now=ctx.now, to_post=True
        )
    return await directory.ensure_channel(
        ctx.session, ctx.workspace, origin.channel_id, origin.channel_name, ctx.now
    )


# -- creating --------------------------------------------------------------------------------------


def create_form(state: str) -> Form:
    kinds = tuple(Choice(sentence(name), kind.value) for kind, name in KIND_NAMES.items())
    return Form(
        CREATE_FORM,
        "New poll",
        (
            TextField(
                "question", "Question", max_length=MAX_QUESTION_CHARS, placeholder="Ship Friday?"
            ),
            SelectField("kind", "Kind", kinds, initial=(PollKind.SINGLE.value,)),
            TextField(
                "options",
                "Options (one per line, or a | b)",
                required=False,
                multiline=True,
                placeholder="Yes\nNo",
            ),
            TextField(
                "max_choices",
                "Multiple choice: most options one may pick",
                required=False,
                max_length=3,
                placeholder="all",
            ),
            SelectField(
                "anonymous",
                "Anonymous?",
                (
                    Choice("No: voters' names are shown", "no"),
                    Choice("Yes: nobody can see who chose what", "yes"),
                ),
                initial=("no",),
            ),
            SelectField(
                "results",
                "Results",
                (
                    Choice("Live (named polls only)", ResultsVisibility.LIVE.value),
                    Choice("In the channel when it closes", ResultsVisibility.CLOSED.value),
                    Choice("To me only, when it closes", ResultsVisibility.CREATOR.value),
                ),
                required=False,
            ),
            TextField(
                "closes",
                "Closes (2d, 3h, YYYY-MM-DD HH:MM)",
                required=False,
                max_length=40,
                placeholder="no deadline",
            ),
            TextField(
                "threshold",
                "Show results from this many answers",
                required=False,
                max_length=3,
                placeholder="5 (at least 3)",
            ),
        ),
        submit_label="Create",
        state=state,
    )


async def create(ctx: Context, args: dict[str, Any]) -> Response:
    line: str | None = args.get("line")
    channel = await channel_here(ctx)
    if not line:
        return OpenForm(create_form(str(channel.id)))
    try:
        parsed = parse_line(line, limits(ctx))
    except UserError as exc:
        words = line.split()
        names = [s.name for s in POLL.subcommands if s.name != "create"]
        close = difflib.get_close_matches(words[0].lower(), names, n=1) if len(words) <= 2 else []
        if close:
            raise UserError(f"{exc.message} Did you mean `/poll {close[0]}`?") from None
        raise
    poll = await service.create(ctx, parsed, channel)
    return await _created(ctx, poll, channel)


async def save_form(ctx: Context, event: FormSubmission) -> Response:
    try:
        channel = await ctx.session.get(Channel, int(event.state))
    except ValueError:
        channel = None
    if channel is None or channel.workspace_id != ctx.workspace.id:
        raise UserError("That form has expired; run /poll again in the poll's channel.")
    parsed = parse_form(event.values, limits(ctx))
    poll = await service.create(ctx, parsed, channel)
    return await _created(ctx, poll, channel)


def _too_few_note(poll: Poll, eligible: int) -> str:
    """Said at creation when fewer can answer than the results need."""
    if eligible >= poll.threshold:
        return ""
    note = f" Only {eligible} can answer, fewer than the {poll.threshold} answers its results need"
    if eligible < MIN_THRESHOLD:
        return f"{note}: they will stay hidden."
    return (
        f"{note}: they will stay hidden unless you `/poll close {poll.id}` and ask again with "
        f"`--threshold {eligible}`."
    )


async def _created(ctx: Context, poll: Poll, channel: Channel) -> Reply:
    zone = service.zone_of(ctx.member)
    eligible = (await ballots.tally(ctx.session, poll, with_texts=False)).eligible
    few = _too_few_note(poll, eligible)
    when = (
        f"it closes {describe_local(poll.closes_at, zone)}"
        if poll.closes_at is not None
        else f"it stays open until you close it (`/poll close {poll.id}`)"
    )
    anonymous = " Anonymous: not even you can see who chose what." if poll.anonymous else ""
    return reply(
        marked(f"Poll #{poll.id} is up in #{channel.name}; {when}.{anonymous}{few}"),
        marked(
            f"`/poll results {poll.id}` shows its results when they may be seen; "
            f"`/poll remind {poll.id}` nudges who has not answered."
        ),
    )


# -- voting ----------------------------------------------------------------------------------------


def _poll_id_of(action_id: str) -> int:
    parts = action_id.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        raise UserError("That poll button has expired.")
    return int(parts[1])


async def on_vote(ctx: Context, event: ActionInvocation) -> Response:
    poll_id = _poll_id_of(event.action_id)
    raw = list(event.values) or ([event.value] if event.value else [])
    try:
        choices = [int(value) for value in raw]
    except ValueError:
        raise UserError("That poll button has expired.") from None
    return await service.vote(ctx, poll_id, choices)


async def on_answer_button(ctx: Context, event: ActionInvocation) -> Response:
    poll = await service.load_poll(ctx.session, _poll_id_of(event.action_id))
    if poll is None or poll.workspace_id != ctx.workspace.id:
        raise UserError("That poll no longer exists.")
    service.check_open(poll, ctx.now, service.zone_of(ctx.member))
    return OpenForm(render.answer_form(poll))


async def save_answer(ctx: Context, event: FormSubmission) -> Response:
    if not event.state.isdigit():
        raise UserError("That form has expired; press Answer on the poll again.")
    raw = event.values.get("answer", "")
    answer = raw[0] if isinstance(raw, list) and raw else str(raw or "")
    if not answer.strip():
        raise UserError("Write an answer before sending it.", field="answer")
    return await service.vote(ctx, int(event.state), [0], answer)


# -- list, results ---------------------------------------------------------------------------------


async def list_polls(ctx: Context, args: dict[str, Any]) -> Response:
    origin = ctx.event.origin
    channel = None
    if origin.channel_id:
        channel = await ctx.session.scalar(
            select(Channel.id).where(
                Channel.workspace_id == ctx.workspace.id, Channel.external_id == origin.channel_id
            )
        )
    polls = await service.open_polls(ctx.session, [channel] if channel is not None else [])
    if not polls:
        return reply(marked(f"No open polls here. Start one: `{CREATE_EXAMPLE}`"))
    zone = service.zone_of(ctx.member)
    lines = [text("Open polls here:")]
    for poll in polls:
        tally = await ballots.tally(ctx.session, poll, with_texts=False)
        lines.append(render.describe_poll_line(poll, tally, zone))
    return reply(*lines)


async def results(ctx: Context, args: dict[str, Any]) -> Response:
    poll = await service.find_poll(ctx, args["id"])
    if poll.round_id is not None:
        # A pulse's results are pooled and protected against differencing by the pulse
        # feature; one question's own counts could undo that.
        raise UserError(f"Poll #{poll.id} is a question of a pulse check; see `/pulse results`.")
    await service.require_audience(ctx, poll)
    found = await service.gather(ctx.session, poll)
    refusal = service.results_refusal(poll, found, ctx.member.id)
    if refusal is not None:
        return reply(refusal)
    heading = f"Poll #{poll.id} results" + (" so far" if poll.closed_at is None else "")
    return Reply(render.results_message(found, heading=heading, zone=service.zone_of(ctx.member)))


# -- close, reopen, remind -------------------------------------------------------------------------


def _not_a_pulse(poll: Poll) -> None:
    if poll.round_id is not None:
        raise UserError(
            f"Poll #{poll.id} is a question of a pulse check; it opens and closes with its round."
        )


async def close(ctx: Context, args: dict[str, Any]) -> Response:
    poll = await service.find_poll(ctx, args["id"], lock="update")
    service.require_manager(ctx, poll)
    _not_a_pulse(poll)
    if poll.closed_at is not None:
        zone = service.zone_of(ctx.member)
        raise UserError(
            f"Poll #{poll.id} is already closed (since {describe_local(poll.closed_at, zone)}). "
            f"`/poll reopen {poll.id}` opens it again."
        )
    await service.close_and_announce(ctx.session, poll, ctx.now, ctx.core.edit_window)
    ctx.sent_something = True
    ctx.schedules_changed = True
    where = (
        "its creator gets the results"
        if poll.results == ResultsVisibility.CREATOR.value
        else "the results are posted in its channel"
    )
    return reply(f"Closed poll #{poll.id}; {where}.")


async def reopen(ctx: Context, args: dict[str, Any]) -> Response:
    poll = await service.find_poll(ctx, args["id"], lock="update")
    service.require_manager(ctx, poll)
    _not_a_pulse(poll)
    if poll.closed_at is None:
        raise UserError(f"Poll #{poll.id} is still open.")
    zone = service.zone_of(ctx.member)
    raw: str | None = args.get("closes")
    if raw:
        closes_at = parse_deadline(raw, ctx.now, zone)
    elif poll.closes_at is not None and poll.closes_at > ctx.now:
        closes_at = poll.closes_at
    else:
        closes_at = None
    await service.reopen(ctx, poll, closes_at)
    when = (
        f"it closes {describe_local(closes_at, zone)}"
        if closes_at is not None
        else f"it has no deadline now (give one: `/poll reopen {poll.id} 2d`, {DEADLINE_HELP})"
    )
    note = (
        " Answers given before the close stand and can't be changed: nobody can tell which "
        "was whose."
        if poll.anonymous
        else ""
    )
    return reply(marked(f"Reopened poll #{poll.id} and posted it again; {when}.{note}"))


async def remind(ctx: Context, args: dict[str, Any]) -> Response:
    poll = await service.find_poll(ctx, args["id"], lock="share")
    service.require_manager(ctx, poll)
    _not_a_pulse(poll)
    service.check_open(poll, ctx.now, service.zone_of(ctx.member))
    count = await reminders.remind_now(ctx, poll)
    people = "member" if count == 1 else "members"
    return reply(f"Reminded {count} {people} who have not answered poll #{poll.id} yet.")
