"""A run's report in the standup's channel, kept up to date in place.

One parent message per run: the title, "Heard from N of M", who is away, who skipped, who has not
answered (tagged only if the standup says so); the answers follow in the parent's thread (one
reply per person, or per question) or inside the parent (``report_layout = "inline"``).

Every message of a report has a stable *base* idempotency key
(``standup:<sid>:run:<rid>:report``, ``...:m<member id>``, ``...:q<question index>``); it is
posted once under that key and each later change is an UPDATE of it keyed ``<base>:v<n>``,
depending on the original row (so the worker fills in its platform message id). ``n`` is
``run.report_version`` for the parent and ``prompt.report_version`` for a person's reply, so the
last payload queued is one exact-key lookup. :func:`refresh` renders, compares with what was last
queued, and queues only what changed, so calling it twice in a row sends nothing the second time.
It locks the run row first: two refreshes of one run (two replicas, the close and the refresher)
run one after the other and never compute the same version with different contents.

An answer, skip or edit does not refresh the report in its own transaction: it marks the change
(:func:`mark_dirty`) and, after commit, the refresher (``refresher.py``) runs
:func:`refresh_marked` in a transaction of its own, which looks at the parent and at the replies
of the marked prompts only; answers that arrive while it runs are covered by one more refresh.

When a report appears: in "each" mode at the first answer (no empty "Heard from 0" post at prompt
time), in "cutoff" mode at the end of the window; in both modes the window's end makes sure a
report exists even when nobody answered. Once it exists, answers, edits and skips update it in
place, and so does the window's end ("Not answered yet" becomes "Not answered"). A prompt going
out does not touch it (with thousands of members in many zones that would re-render the report
once per prompt); someone shown as "asked later" moves to "not answered yet" at the next change.

User text (answers, names) is always :class:`~bot.chat.Plain`, never parsed, so ``<!channel>`` or
``@everyone`` typed into an answer reaches the channel as text (invariant 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    MESSAGE_ADAPTER,
    Bold,
    Context,
    Divider,
    Header,
    Inline,
    Italic,
    Message,
    Plain,
    Section,
    Text,
    UserMention,
    message,
    text,
)
from bot.delivery.outbox import enqueue
from bot.features.standups.schedules import run_times
from bot.port import Method, Target
from storage.models import (
    Absence,
    Channel,
    Member,
    OutboxMessage,
    PromptStatus,
    Standup,
    StandupAnswer,
    StandupParticipant,
    StandupPrompt,
    StandupRun,
)

MOODS = ("very bad", "bad", "okay", "good", "great")

# Roster statuses beyond PromptStatus: a participant whose local prompt time has not come yet.
WAITING = "waiting"


@dataclass
class Entry:
    """One person in a run's report."""

    member: Member
    status: str  # a PromptStatus value, or WAITING
    prompt: StandupPrompt | None = None
    answers: dict[int, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.member.display_name or self.member.platform_user_id


@dataclass
class Roster:
    entries: list[Entry]

    def having(self, *statuses: str) -> list[Entry]:
        return [e for e in self.entries if e.status in statuses]

    @property
    def answered(self) -> list[Entry]:
        """Those who answered, in the order they did."""
        done = [e for e in self.having(PromptStatus.ANSWERED) if e.prompt is not None]
        return sorted(done, key=lambda e: (e.prompt.answered_at, e.prompt.id))  # type: ignore[union-attr]

    @property
    def expected(self) -> list[Entry]:
        """Everyone the report counts: all but those away."""
        return [e for e in self.entries if e.status != PromptStatus.AWAY]

    @property
    def missing(self) -> list[Entry]:
        """Prompted and not answered (nor skipped): who a nudge names."""
        return self.having(PromptStatus.PENDING, PromptStatus.UNREACHABLE)


def day_label(day: date) -> str:
    """``Mon 9 Mar``."""
    return f"{day:%a} {day.day} {day:%b}"


async def load_roster(session: AsyncSession, standup: Standup, run: StandupRun) -> Roster:
    """Everyone in the run: its prompts, plus participants not prompted yet (away if an
    absence covers the run's date, else waiting for their local time)."""
    entries: dict[int, Entry] = {}
    rows = await session.execute(
        select(StandupPrompt, Member)
        .join(Member, Member.id == StandupPrompt.member_id)
        .where(StandupPrompt.run_id == run.id)
    )
    for prompt, member in rows.all():
        entries[member.id] = Entry(member, PromptStatus(prompt.status).value, prompt)
    answered = [e.prompt.id for e in entries.values() if e.prompt and e.status == "answered"]
    if answered:
        by_prompt = {e.prompt.id: e for e in entries.values() if e.prompt}
        for answer in await session.scalars(
            select(StandupAnswer).where(StandupAnswer.prompt_id.in_(answered))
        ):
            by_prompt[answer.prompt_id].answers[answer.question_index] = answer.text
    # Participants without a prompt in this run (only those: the prompted ones are loaded).
    prompted = select(StandupPrompt.id).where(
        StandupPrompt.run_id == run.id, StandupPrompt.member_id == StandupParticipant.member_id
    )
    waiting = list(
        await session.scalars(
            select(Member)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            .where(StandupParticipant.standup_id == standup.id, ~prompted.exists())
        )
    )
    waiting = [m for m in waiting if m.id not in entries]
    if waiting:
        away = set(
            await session.scalars(
                select(Absence.member_id).where(
                    Absence.member_id.in_([m.id for m in waiting]),
                    or_(Absence.standup_id.is_(None), Absence.standup_id == standup.id),
                    Absence.start_date <= run.run_date,
                    Absence.end_date >= run.run_date,
                )
            )
        )
        for member in waiting:
            status = PromptStatus.AWAY.value if member.id in away else WAITING
            entries[member.id] = Entry(member, status)
    ordered = sorted(entries.values(), key=lambda e: (e.name.lower(), e.member.id))
    return Roster(ordered)


# -- rendering ---------------------------------------------------------------------------------


def answer_text(question: dict[str, Any], raw: str) -> Text:
    """An answer as shown in reports and summaries: always Plain (user text)."""
    if not raw:
        return text(Italic("no answer"))
    if question.get("kind") == "mood" and raw.isdigit() and 1 <= int(raw) <= len(MOODS):
        return text(Plain(f"{raw}/5 ({MOODS[int(raw) - 1]})"))
    return text(Plain(raw))


def _names(entries: Sequence[Entry], tag: bool) -> Text:
    parts: list[Inline | str] = []
    for n, entry in enumerate(entries):
        if n:
            parts.append(", ")
        if tag:
            parts.append(UserMention(entry.member.platform_user_id, entry.name))
        else:
            parts.append(Plain(entry.name))
    return text(*parts)


def title(standup: Standup, run: StandupRun) -> str:
    return f"{standup.name} · {day_label(run.run_date)} {run.run_date.year}"


def _person_sections(standup: Standup, entry: Entry) -> list[Section]:
    lines: list[Text | Inline | str] = [Bold(entry.name)]
    for i, question in enumerate(standup.questions):
        lines += [
            "\n",
            Bold(question["text"]),
            "\n",
            answer_text(question, entry.answers.get(i, "")),
        ]
    return [Section(text(*lines))]


def _question_sections(standup: Standup, index: int, answered: Sequence[Entry]) -> list[Section]:
    question = standup.questions[index]
    lines: list[Text | Inline | str] = [Bold(question["text"])]
    for entry in answered:
        lines += ["\n", Bold(entry.name), ": ", answer_text(question, entry.answers.get(index, ""))]
    return [Section(text(*lines))]


def parent_message(standup: Standup, run: StandupRun, roster: Roster, *, closed: bool) -> Message:
    answered = roster.answered
    blocks: list[Any] = [
        Header(title(standup, run)),
        Section(text(f"Heard from {len(answered)} of {len(roster.expected)}.")),
    ]
    away = roster.having(PromptStatus.AWAY)
    if away:
        blocks.append(Section(text("Away: ", _names(away, tag=False))))
    skipped = roster.having(PromptStatus.SKIPPED)
    if skipped:
        blocks.append(Section(text("Skipped: ", _names(skipped, tag=False))))
    missing = roster.missing
    if missing:
        label = "Not answered: " if closed else "Not answered yet: "
        blocks.append(Section(text(label, _names(missing, tag=standup.tag_missing))))
    waiting = roster.having(WAITING)
    if waiting:
        # Not tagged: their prompt has not even gone out.
        blocks.append(
            Section(text("Asked later, at their local time: ", _names(waiting, tag=False)))
        )
    if not answered and closed:
        blocks.append(Context(text("No one has answered this time.")))
    if standup.report_layout == "inline":
        if answered:
            blocks.append(Divider())
        if standup.group_by == "question":
            for i in range(len(standup.questions)):
                if answered:
                    blocks.extend(_question_sections(standup, i, answered))
        else:
            for entry in answered:
                blocks.extend(_person_sections(standup, entry))
    elif answered:
        blocks.append(Context(text("Answers are in the thread.")))
    return message(*blocks, summary=f"{title(standup, run)}: heard from {len(answered)}")


def nudge_message(standup: Standup, run: StandupRun, missing: Sequence[Entry]) -> Message:
    """The channel nudge: names only those still missing; no "you", so those who answered
    don't think it is for them."""
    return message(
        text(
            f"{standup.name} ({day_label(run.run_date)}) is still waiting for: ",
            _names(missing, tag=standup.tag_missing),
            ".",
        )
    )


# -- publishing --------------------------------------------------------------------------------


def report_key(standup: Standup, run: StandupRun) -> str:
    return f"standup:{standup.id}:run:{run.id}:report"


async def _original_id(session: AsyncSession, base: str) -> int | None:
    return await session.scalar(
        select(OutboxMessage.id).where(OutboxMessage.idempotency_key == base)
    )


def _version_key(base: str, version: int) -> str:
    return base if version == 0 else f"{base}:v{version}"


async def _payload_of(session: AsyncSession, key: str) -> dict[str, Any] | None:
    return await session.scalar(
        select(OutboxMessage.payload).where(OutboxMessage.idempotency_key == key)
    )


async def _latest_by_prefix(session: AsyncSession, base: str) -> tuple[dict[str, Any] | None, int]:
    """For messages without a version column of their own (per-question replies): the payload
    last queued under ``base`` and how many updates it has had."""
    rows = (
        await session.execute(
            select(OutboxMessage.payload)
            .where(
                or_(
                    OutboxMessage.idempotency_key == base,
                    OutboxMessage.idempotency_key.like(f"{base}:v%"),
                )
            )
            .order_by(OutboxMessage.id)
        )
    ).all()
    if not rows:
        return None, 0
    return rows[-1][0], len(rows) - 1


@dataclass
class _Publisher:
    session: AsyncSession
    workspace_id: int
    channel_id: str
    now: datetime
    sent: bool = False

    async def publish(
        self,
        base: str,
        msg: Message,
        *,
        original: int | None,
        version: int | None,
        thread_of: int | None = None,
    ) -> tuple[int, int]:
        """Post ``msg`` under ``base`` if it never was, else update it if it changed since the
        last version queued. ``version`` is the message's update count when it is kept in a
        column (its last payload is then one exact-key lookup), None to look it up by prefix.
        Returns the original's outbox id and the new version (0 = never updated)."""
        payload = MESSAGE_ADAPTER.dump_python(msg, mode="json")
        if original is None:
            original = await _original_id(self.session, base)
        if original is None:
            self.sent = True
            new_id = await enqueue(
                self.session,
                workspace_id=self.workspace_id,
                method=Method.POST,
                target=Target(channel_id=self.channel_id),
                message=msg,
                key=base,
                now=self.now,
                depends_on=thread_of,
            )
            return new_id, 0
        if version is None:
            last, version = await _latest_by_prefix(self.session, base)
        else:
            last = await _payload_of(self.session, _version_key(base, version))
        if last == payload:
            return original, version
        version += 1
        self.sent = True
        await enqueue(
            self.session,
            workspace_id=self.workspace_id,
            method=Method.UPDATE,
            target=Target(channel_id=self.channel_id),
            message=msg,
            key=_version_key(base, version),
            now=self.now,
            depends_on=original,
        )
        return original, version


async def refresh(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    now: datetime,
    *,
    publish: bool,
    member_id: int | None = None,
    dirty_only: bool = False,
    publish_empty: bool = True,
) -> bool:
    """Bring the run's report up to date; post it first if ``publish`` and it does not exist
    yet (with ``publish_empty`` False, only once someone has answered). Returns whether anything
    was queued.

    Of the per-person replies, all are looked at, or with ``member_id`` only that member's, or
    with ``dirty_only`` only those of prompts marked ``report_dirty``; a first post posts them all.
    With ``dirty_only`` a run with nothing marked is left alone (nothing changed since the last
    refresh; a second replica refreshing the same run finds exactly that).

    It locks the run row first, so refreshes of one run (two replicas, the close occurrence and
    the refresher) happen one after the other and never compute the same version with different
    contents. Then it takes the run's marks (clears ``report_dirty`` of its prompts and the run's
    ``report_dirty_since``) *before* reading the roster: every change that set a mark taken here
    has committed and is in what is rendered; a mark set after that stays for the next refresh.
    """
    locked = await session.scalar(
        select(StandupRun)
        .where(StandupRun.id == run.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        return False
    run = locked
    marked_since = run.report_dirty_since
    dirty = set(
        await session.scalars(
            update(StandupPrompt)
            .where(StandupPrompt.run_id == run.id, StandupPrompt.report_dirty.is_(True))
            .values(report_dirty=False)
            .returning(StandupPrompt.id)
            .execution_options(synchronize_session=False)
        )
    )
    if marked_since is not None:
        run.report_dirty_since = None
    if dirty_only and not dirty and marked_since is None:
        return False
    if run.report_outbox_id is None and not publish:
        return False  # the marks are moot: a first post renders everything
    channel = await session.get(Channel, standup.report_channel_id)
    if channel is None:
        return False
    first_post = run.report_outbox_id is None
    roster = await load_roster(session, standup, run)
    answered = roster.answered
    if first_post and not answered and not publish_empty:
        return False
    times = await run_times(session, standup, run)
    out = _Publisher(session, standup.workspace_id, channel.external_id, now)
    base = report_key(standup, run)
    parent = parent_message(standup, run, roster, closed=now >= times.cutoff_at)
    run.report_outbox_id, run.report_version = await out.publish(
        base, parent, original=run.report_outbox_id, version=run.report_version
    )
    if standup.report_layout == "inline":
        return out.sent
    if standup.group_by == "question":
        if answered:
            for i in range(len(standup.questions)):
                reply = message(*_question_sections(standup, i, answered))
                await out.publish(
                    f"{base}:q{i}",
                    reply,
                    original=None,
                    version=None,
                    thread_of=run.report_outbox_id,
                )
        return out.sent
    for entry in answered:
        prompt = entry.prompt
        assert prompt is not None
        if not first_post:
            if member_id is not None and entry.member.id != member_id:
                continue
            if dirty_only and prompt.id not in dirty:
                continue
        reply = message(*_person_sections(standup, entry))
        prompt.report_outbox_id, prompt.report_version = await out.publish(
            f"{base}:m{entry.member.id}",
            reply,
            original=prompt.report_outbox_id,
            version=prompt.report_version,
            thread_of=run.report_outbox_id,
        )
    return out.sent


async def refresh_marked(
    session: AsyncSession, standup: Standup, run: StandupRun, now: datetime
) -> bool:
    """The refresh after answers, skips and edits (the refresher and the sweep): what is marked,
    posting the report first in "each" mode once someone has answered (no empty "Heard from 0"),
    nothing before the window's end in "cutoff" mode (the close posts everything)."""
    return await refresh(
        session,
        standup,
        run,
        now,
        publish=standup.report_mode == "each",
        dirty_only=True,
        publish_empty=False,
    )


async def mark_dirty(
    session: AsyncSession, run_id: int, now: datetime, prompt_id: int | None = None
) -> None:
    """Record, in the caller's transaction, that the run's report (and ``prompt_id``'s reply)
    is out of date.

    The prompt's mark is the truth; the run's ``report_dirty_since`` is a cheap index of it for
    the sweep, written only when unset and only if nobody holds the run row (``SKIP LOCKED`` on
    PostgreSQL): a refresh holds it for as long as it renders, and an answer must not wait for
    that. A run mark skipped that way is covered by the refresh that follows (in process) or by
    the sweep, which also looks at marked prompts. Call this last in the transaction.
    """
    if prompt_id is not None:
        await session.execute(
            update(StandupPrompt)
            .where(StandupPrompt.id == prompt_id)
            .values(report_dirty=True)
            .execution_options(synchronize_session=False)
        )
    unmarked = (
        select(StandupRun.id)
        .where(StandupRun.id == run_id, StandupRun.report_dirty_since.is_(None))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await session.execute(
        update(StandupRun)
        .where(StandupRun.id == unmarked)
        .values(report_dirty_since=now)
        .execution_options(synchronize_session=False)
    )


__all__ = [
    "MOODS",
    "Entry",
    "Roster",
    "answer_text",
    "day_label",
    "load_roster",
    "mark_dirty",
    "nudge_message",
    "parent_message",
    "refresh",
    "refresh_marked",
]
