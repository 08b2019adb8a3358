"""Polls as messages: the poll with its vote controls, results (counts, percentages, a text bar,
participation, a chart), and the notices around them.

Everything here is data in the neutral chat model; the adapters draw buttons, menus and the
:class:`~bot.chat.Chart` PNG. User text (the question, options, open answers, names) is always
:class:`~bot.chat.Plain`, so ``@everyone`` typed into an option never pings anyone (invariant 5).
Names of voters appear only for named polls, never for anonymous ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.chat import (
    Actions,
    Block,
    Bold,
    Button,
    Chart,
    ChartSeries,
    Choice,
    Context,
    Form,
    Header,
    Inline,
    Message,
    Plain,
    Section,
    Select,
    Text,
    TextField,
    message,
    text,
)

# close_poll is re-exported: the pulse feature closes its rounds' polls through this module.
from bot.features.polls.ballots import Tally
from bot.features.polls.ballots import close_poll as close_poll
from bot.features.polls.options import KIND_NAMES, describe_local, sentence
from bot.features.standups.report import NAMES_SHOWN
from bot.timezones import zone as zone_info
from storage.polls import Poll, PollKind, ResultsVisibility, more_answers_needed

VOTE_ACTION = "poll-vote"
ANSWER_ACTION = "poll-answer"
ANSWER_FORM = "poll-answer"
# Single choice polls with this many options or fewer get buttons; more get a menu.
MAX_BUTTONS = 5
SCALE_VALUES = tuple(range(1, 6))
ENPS_VALUES = tuple(range(0, 11))
BAR_WIDTH = 10
# Open answers are grouped into sections of about this many characters (the adapters split
# longer ones, but fewer, fuller sections read better).
ANSWERS_PER_SECTION_CHARS = 2500
MAX_ANSWER_CHARS = 2000
ENPS_GROUPS = (
    ("Detractors (0-6)", range(0, 7)),
    ("Passives (7-8)", range(7, 9)),
    ("Promoters (9-10)", range(9, 11)),
)


# -- vote controls ---------------------------------------------------------------------------------


def vote_action_id(poll_id: int) -> str:
    """``poll-vote:<poll id>`` for every control of a poll: the choice travels in the value
    only, so an action id (which the core and the adapters may log with who acted) never says
    what anyone chose. (Slack wants the ids in a block unique; its adapter sees to that.)"""
    return f"{VOTE_ACTION}:{poll_id}"


def vote_blocks(poll: Poll) -> tuple[Block, ...]:
    """The controls that vote in ``poll``: buttons for up to five options and for the 1-5 scale,
    a menu for more options, for multiple choice (up to ``max_choices``) and for eNPS (0-10, one
    row on Discord), an Answer button that opens a form for open answers."""
    kind = PollKind(poll.kind)
    if kind is PollKind.TEXT:
        return (Actions((Button("Answer", f"{ANSWER_ACTION}:{poll.id}", style="primary"),)),)
    if kind is PollKind.SCALE:
        buttons = tuple(Button(str(v), vote_action_id(poll.id), value=str(v)) for v in SCALE_VALUES)
        return (Actions(buttons), Context(text("1 = lowest, 5 = highest.")))
    if kind is PollKind.ENPS:
        choices = tuple(Choice(str(v), str(v)) for v in ENPS_VALUES)
        menu = Select(vote_action_id(poll.id), choices, "0 = not at all likely, 10 = extremely")
        return (Actions((menu,)),)
    options = tuple(Choice(label, str(i)) for i, label in enumerate(poll.options))
    if kind is PollKind.MULTIPLE:
        limit = min(poll.max_choices, len(options))
        placeholder = "Choose one" if limit == 1 else f"Choose up to {limit}"
        return (Actions((Select(vote_action_id(poll.id), options, placeholder, limit),)),)
    if len(options) <= MAX_BUTTONS:
        return (
            Actions(
                tuple(Button(c.label, vote_action_id(poll.id), value=c.value) for c in options)
            ),
        )
    return (Actions((Select(vote_action_id(poll.id), options, "Choose one"),)),)


def choice_label(poll: Poll, choice: int) -> str:
    kind = PollKind(poll.kind)
    if kind in (PollKind.SINGLE, PollKind.MULTIPLE):
        return poll.options[choice] if 0 <= choice < len(poll.options) else f"option {choice + 1}"
    return str(choice)


def answer_form(poll: Poll) -> Form:
    label = poll.question if len(poll.question) <= 45 else "Your answer"
    return Form(
        ANSWER_FORM,
        "Your answer",
        (
            TextField(
                "answer",
                label,
                multiline=True,
                max_length=MAX_ANSWER_CHARS,
                placeholder="Anonymous: nobody can see who wrote it." if poll.anonymous else "",
            ),
        ),
        submit_label="Send",
        state=str(poll.id),
    )


# -- results ---------------------------------------------------------------------------------------


@dataclass
class Results:
    """What results show: the counts, and for named polls who chose what."""

    poll: Poll
    tally: Tally
    # Named polls only: voter names by choice, and (name, answer) for open answers.
    names: dict[int, list[str]] = field(default_factory=dict)
    named_answers: list[tuple[str, str]] = field(default_factory=list)
    # Whose poll, under the chart's title: the team's name or "#channel".
    place: str = ""

    @property
    def held(self) -> int:
        """More answers needed since the result of an earlier close (storage.polls)."""
        return more_answers_needed(self.poll, self.tally.voters)

    @property
    def shown(self) -> bool:
        """Enough answers to show anything (invariant 6)."""
        return self.tally.voters >= self.poll.threshold and not self.held


def percent(count: int, total: int) -> int:
    return round(100 * count / total) if total else 0


def bar(share: int) -> str:
    filled = round(share * BAR_WIDTH / 100)
    return "█" * filled + "░" * (BAR_WIDTH - filled)


def rows(poll: Poll, tally: Tally) -> list[tuple[int, str, int]]:
    """(choice, label, ballots) in the order they are shown; every option or value, also those
    nobody chose."""
    kind = PollKind(poll.kind)
    if kind is PollKind.SCALE:
        values: Sequence[int] = SCALE_VALUES
    elif kind is PollKind.ENPS:
        values = ENPS_VALUES
    elif kind is PollKind.TEXT:
        return []
    else:
        values = range(len(poll.options))
    return [(v, choice_label(poll, v), tally.counts.get(v, 0)) for v in values]


def mean(tally: Tally) -> float | None:
    total = sum(tally.counts.values())
    if not total:
        return None
    return sum(v * c for v, c in tally.counts.items()) / total


@dataclass(frozen=True)
class Enps:
    score: int  # % promoters minus % detractors, -100..100
    groups: tuple[tuple[str, int, int], ...]  # (label, count, percent)


def enps(tally: Tally) -> Enps:
    total = sum(tally.counts.values())
    groups = []
    for label, values in ENPS_GROUPS:
        count = sum(tally.counts.get(v, 0) for v in values)
        groups.append((label, count, percent(count, total)))
    detractors, promoters = groups[0][1], groups[2][1]
    score = round(100 * (promoters - detractors) / total) if total else 0
    return Enps(score, tuple(groups))


def participation(tally: Tally) -> str:
    return f"{tally.voters} of {tally.eligible} answered"


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMES_SHOWN])
    if len(names) > NAMES_SHOWN:
        shown += f" and {len(names) - NAMES_SHOWN:,} more"
    return shown


def _line(label: str, count: int, total: int) -> list[Inline | str]:
    share = percent(count, total)
    return [Plain(label), f"\n{bar(share)} {share}% ({count})"]


def result_blocks(results: Results) -> list[Block]:
    """The counts of a poll with enough answers (callers check :attr:`Results.shown`)."""
    poll, tally = results.poll, results.tally
    kind = PollKind(poll.kind)
    voters = tally.voters
    blocks: list[Block] = []
    if kind is PollKind.TEXT:
        if results.named_answers:
            entries = [
                text(Bold(name), ": ", Plain(answer)) for name, answer in results.named_answers
            ]
        else:
            entries = [text("• ", Plain(answer)) for answer in tally.texts]
        blocks.extend(_grouped(entries))
        if not entries:
            blocks.append(Section(text("No answers.")))
    elif kind is PollKind.ENPS:
        summary = enps(tally)
        blocks.append(Section(text(Bold(f"eNPS {summary.score:+d}"), f" ({voters} answers)")))
        for label, count, share in summary.groups:
            blocks.append(Section(text(label, f"\n{bar(share)} {share}% ({count})")))
    else:
        if kind is PollKind.SCALE:
            average = mean(tally)
            shown = f"{average:.1f}" if average is not None else "-"
            blocks.append(Section(text(Bold(f"Average {shown} of 5"), f" ({voters} answers)")))
        for choice, label, count in rows(poll, tally):
            parts = _line(label, count, voters)
            who = results.names.get(choice)
            if who:
                parts.append(f"\n{_names(who)}")
            blocks.append(Section(text(*parts)))
        if kind is PollKind.MULTIPLE and poll.max_choices > 1:
            blocks.append(
                Context(text(f"Each could pick up to {poll.max_choices}; shares are of voters."))
            )
    return blocks


def _grouped(entries: Sequence[Text]) -> list[Block]:
    blocks: list[Block] = []
    current: list[Text | str] = []
    size = 0
    for entry in entries:
        if current and size + len(entry) > ANSWERS_PER_SECTION_CHARS:
            blocks.append(Section(text(*current)))
            current, size = [], 0
        if current:
            current.append("\n")
        current.append(entry)
        size += len(entry) + 1
    if current:
        blocks.append(Section(text(*current)))
    return blocks


def chart(results: Results, zone: str) -> Chart | None:
    """A bar chart of the shares with their counts, under the poll's team or channel, its dates
    and the number of answers, led by the average (1-5) or the eNPS; an alt text that says the
    same in words."""
    poll, tally = results.poll, results.tally
    kind = PollKind(poll.kind)
    if kind is PollKind.TEXT:
        return None
    headline = ""
    if kind is PollKind.ENPS:
        summary = enps(tally)
        items = [(label, count, share) for label, count, share in summary.groups]
        headline = f"eNPS {summary.score:+d}"
    else:
        items = [
            (label, count, percent(count, tally.voters)) for _, label, count in rows(poll, tally)
        ]
        average = mean(tally) if kind is PollKind.SCALE else None
        if average is not None:
            headline = f"Average {average:.1f} of 5"
    words = ", ".join(f"{label} {share}% ({count})" for label, count, share in items)
    extra = f" {headline}." if headline else ""
    return Chart(
        title=poll.question,
        labels=tuple(label for label, _, _ in items),
        series=(
            ChartSeries(
                "Share of answers",
                tuple(float(s) for _, _, s in items),
                tuple(c for _, c, _ in items),
            ),
        ),
        alt=(
            f"Bar chart of the answers to {poll.question}: {words}; {participation(tally)}.{extra}"
        ),
        style="bar",
        unit="%",
        team=results.place,
        period=chart_period(poll, zone),
        answers=tally.voters,
        headline=headline,
    )


def chart_period(poll: Poll, zone: str) -> str:
    """``9 Mar to 13 Mar 2026``, or ``since 9 Mar 2026, so far`` while open (local dates)."""
    opened = poll.opens_at.astimezone(zone_info(zone))
    if poll.closed_at is None:
        return f"since {opened.day} {opened:%b %Y}, so far"
    closed = poll.closed_at.astimezone(zone_info(zone))
    if opened.date() == closed.date():
        return f"{closed.day} {closed:%b %Y}"
    year = "" if opened.year == closed.year else f" {opened.year}"
    return f"{opened.day} {opened:%b}{year} to {closed.day} {closed:%b %Y}"


def hidden_text(tally: Tally, threshold: int, poll: Poll | None = None) -> str:
    held = more_answers_needed(poll, tally.voters) if poll is not None else 0
    if held and poll is not None and poll.published_voters is not None:
        since = tally.voters - poll.published_voters
        return (
            f"Results held: {since} answered since the results shown at the earlier close. "
            f"The difference between two results would show how they answered, so the next "
            f"result is shown once at least {threshold} have answered since ({held} more)."
        )
    answers = "answer" if tally.voters == 1 else "answers"
    return f"Results hidden: {tally.voters} {answers}, fewer than the {threshold} this poll needs."


def results_message(results: Results, *, heading: str, zone: str) -> Message:
    """The results as a message of their own (at close, for ``/poll results``, to the
    creator): the question, counts or the "hidden" notice, participation, the chart."""
    poll, tally = results.poll, results.tally
    blocks: list[Block] = [Header(heading), Section(text(Bold(poll.question)))]
    if results.shown:
        blocks.extend(result_blocks(results))
    else:
        blocks.append(Section(text(hidden_text(tally, poll.threshold, poll))))
    footer = _footer(poll, tally, zone, shown=results.shown)
    if footer:
        blocks.append(Context(text(footer)))
    figure = chart(results, zone) if results.shown else None
    if figure is not None:
        blocks.append(figure)
    return message(*blocks, summary=f"{heading}: {poll.question}")


def _footer(poll: Poll, tally: Tally, zone: str, *, shown: bool) -> str:
    # Hidden results say how many answered (in the notice) and nothing else, ever.
    parts = [participation(tally), KIND_NAMES[PollKind(poll.kind)]] if shown else []
    if poll.anonymous:
        parts.append("anonymous: nobody can see who answered what")
    if poll.closed_at is not None:
        parts.append(f"closed {describe_local(poll.closed_at, zone)}")
    return sentence(" · ".join(parts) + ".") if parts else ""


# -- the poll itself -------------------------------------------------------------------------------


def visibility_text(poll: Poll) -> str:
    results = ResultsVisibility(poll.results)
    need = f"if at least {poll.threshold} answered"
    if results is ResultsVisibility.LIVE:
        return f"Results: live below, once {poll.threshold} have answered."
    if results is ResultsVisibility.CREATOR:
        return f"Results: to its creator only, when it closes ({need})."
    return f"Results: in this channel when it closes ({need})."


def poll_message(
    poll: Poll,
    *,
    creator: str,
    zone: str,
    audience_note: str = "",
    live: Results | None = None,
) -> Message:
    """The poll as posted in its channel: open with its controls (and live results for a named
    live poll), or closed without them."""
    closed = poll.closed_at is not None
    kind = PollKind(poll.kind)
    title = "Anonymous poll" if poll.anonymous else "Poll"
    blocks: list[Block] = [
        Header(f"{title} #{poll.id}" + (" (closed)" if closed else "")),
        Section(text(Bold(poll.question))),
    ]
    what = KIND_NAMES[kind]
    if kind is PollKind.MULTIPLE and poll.max_choices < len(poll.options):
        what += f", up to {poll.max_choices}"
    details = [sentence(what), f"asked by {creator}" if creator else ""]
    if closed:
        assert poll.closed_at is not None
        details.append(f"closed {describe_local(poll.closed_at, zone)}")
    elif poll.closes_at is not None:
        details.append(f"closes {describe_local(poll.closes_at, zone)}")
    else:
        details.append("open until its creator closes it")
    blocks.append(Context(text(" · ".join(d for d in details if d) + ".")))
    if poll.anonymous:
        blocks.append(
            Context(
                text(
                    "Anonymous: nobody, not even the poll's creator or an admin, can see who "
                    "chose what."
                )
            )
        )
    if not closed:
        blocks.append(Context(text(visibility_text(poll))))
        if audience_note:
            blocks.append(Context(text(audience_note)))
        blocks.extend(vote_blocks(poll))
        if live is not None:
            if live.shown:
                blocks.extend(result_blocks(live))
                blocks.append(Context(text(participation(live.tally) + ".")))
                figure = chart(live, zone)
                if figure is not None:
                    blocks.append(figure)
            else:
                blocks.append(
                    Context(
                        text(
                            f"Live results appear once {poll.threshold} have answered "
                            f"({live.tally.voters} so far)."
                        )
                    )
                )
    else:
        blocks.append(Context(text("Votes are no longer taken.")))
    return message(*blocks, summary=f"{title}: {poll.question}")


def reminder_message(poll: Poll, *, zone: str, channel: str) -> Message:
    """The DM to someone who has not answered yet, with the controls to answer right there."""
    where = f" in #{channel}" if channel else ""
    when = (
        f" It closes {describe_local(poll.closes_at, zone)}." if poll.closes_at is not None else ""
    )
    blocks: list[Block] = [
        Section(text(f"A reminder: you have not answered poll #{poll.id}{where} yet.{when}")),
        Section(text(Bold(poll.question))),
    ]
    if poll.anonymous:
        blocks.append(
            Context(
                text("Anonymous: nobody, not even its creator or an admin, can see your answer.")
            )
        )
    blocks.extend(vote_blocks(poll))
    return message(*blocks, summary=f"Reminder: {poll.question}")


def closed_notice(poll: Poll, tally: Tally) -> Message:
    """The channel's note at close when the results went to the poll's creator."""
    return message(
        text("Poll #", str(poll.id), " closed: ", Bold(poll.question)),
        Context(text(f"{participation(tally)}; the results went to its creator.")),
        summary=f"Poll closed: {poll.question}",
    )


def vote_receipt(poll: Poll, choices: Sequence[int], replaced: bool) -> Text:
    """The private reply to a vote: what was recorded, and what that means."""
    parts: list[Inline | str]
    if PollKind(poll.kind) is PollKind.TEXT:
        parts = ["Your answer is changed." if replaced else "Your answer is in."]
    else:
        parts = ["Your vote is changed to " if replaced else "Your vote is in: "]
        for n, choice in enumerate(sorted(set(choices))):
            if n:
                parts.append(", ")
            parts.append(Plain(choice_label(poll, choice)))
        parts.append(".")
    parts.append(" You can change it until the poll closes.")
    if poll.anonymous:
        parts.append(
            " It is anonymous: nobody, not even the poll's creator or an admin, can see who "
            "chose what."
        )
    return text(*parts)


def describe_poll_line(poll: Poll, tally: Tally, zone: str) -> Text:
    """One line of ``/poll list``."""
    closes = (
        f"closes {describe_local(poll.closes_at, zone)}"
        if poll.closes_at is not None
        else "no deadline"
    )
    flags = [KIND_NAMES[PollKind(poll.kind)]]
    if poll.anonymous:
        flags.append("anonymous")
    return text(
        Bold(f"#{poll.id}"),
        " ",
        Plain(poll.question),
        f" ({', '.join(flags)}; {participation(tally)}; {closes})",
    )


def names_by_choice(rows_: Sequence[tuple[int, str]]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for choice, name in rows_:
        out.setdefault(choice, []).append(name)
    return out
