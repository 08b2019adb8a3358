"""A run's report in the standup's channel, kept up to date in place.

One parent message per run: the title, "Heard from N of M", who is away, who skipped, who has not
answered (tagged only if the standup says so), who could not be reached (the platform refused
their prompt DM, see ``unreachable.py``; never tagged); the answers follow in the parent's thread
(one reply per person, or per question) or inside the parent (``report_layout = "inline"``).

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

import asyncio
import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import func, or_, select, update
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
from bot.delivery.outbox import WRITE_SLICE, Outgoing, enqueue, enqueue_many
from bot.features.standups.schedules import run_times
from bot.port import Method, Target
from storage.db import Database
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
# Reports of this many people or more are rendered in a thread (see _render).
_THREAD_AT = 200
# Rows a roster is read in at a time (ids per IN list, rows per streamed partition).
_PARTITION = 500
# Per-person replies queued per write transaction by refresh_apart.
PUBLISH_SLICE = 50
# People named in one list of the report ("Not answered yet: ..."); the rest are counted.
NAMES_SHOWN = 30

# Roster statuses beyond PromptStatus: a participant whose local prompt time has not come yet.
WAITING = "waiting"


@dataclass(frozen=True, slots=True)
class Person:
    """The few columns of a member a report needs (plain rows: a roster of thousands is loaded
    on every refresh, and ORM objects for each would cost most of it)."""

    id: int
    display_name: str
    platform_user_id: str


@dataclass(slots=True)
class PromptState:
    """The columns of a prompt a report reads, and the two it writes back (see :func:`refresh`)."""

    id: int
    answered_at: datetime | None
    report_outbox_id: int | None
    report_version: int


@dataclass
class Entry:
    """One person in a run's report."""

    member: Person
    status: str  # a PromptStatus value, or WAITING
    prompt: PromptState | None = None
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
        """Everyone the report counts: all but those away (the unreachable count, as in the
        stats: they were expected and could not be asked)."""
        return [e for e in self.entries if e.status != PromptStatus.AWAY]

    @property
    def missing(self) -> list[Entry]:
        """Prompted and not answered (nor skipped): who a nudge names. Not the unreachable:
        they never got the prompt, and are listed apart."""
        return self.having(PromptStatus.PENDING)

    @property
    def unreachable(self) -> list[Entry]:
        """Those whose prompt the platform refused (closed DMs, an inactive account)."""
        return self.having(PromptStatus.UNREACHABLE)


def day_label(day: date) -> str:
    """``Mon 9 Mar``."""
    return f"{day:%a} {day.day} {day:%b}"


async def load_roster(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    *,
    answers_of: Collection[int] | None = None,
) -> Roster:
    """Everyone in the run: its prompts, plus participants not prompted yet (away if an
    absence covers the run's date, else waiting for their local time).

    Answers are loaded for every answered prompt, or with ``answers_of`` only for those prompt
    ids (a refresh renders the replies of the prompts that changed, not all of them)."""
    entries: dict[int, Entry] = {}
    # Streamed in partitions: each is an await, so a roster of thousands never holds the event
    # loop for long (answers are handled in between).
    rows = await session.stream(
        select(
            Member.id,
            Member.display_name,
            Member.platform_user_id,
            StandupPrompt.id,
            StandupPrompt.status,
            StandupPrompt.answered_at,
            StandupPrompt.report_outbox_id,
            StandupPrompt.report_version,
        )
        .join(Member, Member.id == StandupPrompt.member_id)
        .where(StandupPrompt.run_id == run.id)
    )
    by_prompt: dict[int, Entry] = {}
    async for partition in rows.partitions(_PARTITION):
        for (
            member_id,
            name,
            user_id,
            prompt_id,
            status,
            answered_at,
            outbox_id,
            version,
        ) in partition:
            entry = Entry(
                Person(member_id, name, user_id),
                PromptStatus(status).value,
                PromptState(prompt_id, answered_at, outbox_id, version),
            )
            entries[member_id] = by_prompt[prompt_id] = entry
    wanted = [
        pid
        for pid, e in by_prompt.items()
        if e.status == PromptStatus.ANSWERED and (answers_of is None or pid in answers_of)
    ]
    for start in range(0, len(wanted), _PARTITION):
        answers = await session.execute(
            select(StandupAnswer.prompt_id, StandupAnswer.question_index, StandupAnswer.text).where(
                StandupAnswer.prompt_id.in_(wanted[start : start + _PARTITION])
            )
        )
        for prompt_id, index, answer in answers:
            by_prompt[prompt_id].answers[index] = answer
    # Participants without a prompt in this run (only those: the prompted ones are loaded).
    prompted = select(StandupPrompt.id).where(
        StandupPrompt.run_id == run.id, StandupPrompt.member_id == StandupParticipant.member_id
    )
    waiting = [
        Person(member_id, name, user_id)
        for member_id, name, user_id in await session.execute(
            select(Member.id, Member.display_name, Member.platform_user_id)
            .join(StandupParticipant, StandupParticipant.member_id == Member.id)
            .where(StandupParticipant.standup_id == standup.id, ~prompted.exists())
        )
        if member_id not in entries
    ]
    if waiting:
        away = set(
            await session.scalars(
                select(Absence.member_id)
                .join(StandupParticipant, StandupParticipant.member_id == Absence.member_id)
                .where(
                    StandupParticipant.standup_id == standup.id,
                    or_(Absence.standup_id.is_(None), Absence.standup_id == standup.id),
                    Absence.start_date <= run.run_date,
                    Absence.end_date >= run.run_date,
                )
            )
        )
        for person in waiting:
            status = PromptStatus.AWAY.value if person.id in away else WAITING
            entries[person.id] = Entry(person, status)
    ordered = sorted(entries.values(), key=lambda e: (e.name.lower(), e.member.id))
    return Roster(ordered)


async def heard_from(session: AsyncSession, standup: Standup, run: StandupRun) -> tuple[int, int]:
    """The report's "Heard from N of M" as two counts, without loading the roster (a reminder
    says it to each member it goes to)."""
    answered = await session.scalar(
        select(func.count()).where(
            StandupPrompt.run_id == run.id, StandupPrompt.status == PromptStatus.ANSWERED
        )
    )
    prompted = await session.scalar(
        select(func.count()).where(
            StandupPrompt.run_id == run.id, StandupPrompt.status != PromptStatus.AWAY
        )
    )
    has_prompt = select(StandupPrompt.id).where(
        StandupPrompt.run_id == run.id, StandupPrompt.member_id == StandupParticipant.member_id
    )
    is_away = select(Absence.id).where(
        Absence.member_id == StandupParticipant.member_id,
        or_(Absence.standup_id.is_(None), Absence.standup_id == standup.id),
        Absence.start_date <= run.run_date,
        Absence.end_date >= run.run_date,
    )
    waiting = await session.scalar(
        select(func.count()).where(
            StandupParticipant.standup_id == standup.id,
            ~has_prompt.exists(),
            ~is_away.exists(),
        )
    )
    return int(answered or 0), int(prompted or 0) + int(waiting or 0)


# -- rendering ---------------------------------------------------------------------------------


def answer_text(question: dict[str, Any], raw: str) -> Text:
    """An answer as shown in reports and summaries: always Plain (user text)."""
    if not raw:
        return text(Italic("no answer"))
    if question.get("kind") == "mood" and raw.isdigit() and 1 <= int(raw) <= len(MOODS):
        return text(Plain(f"{raw}/5 ({MOODS[int(raw) - 1]})"))
    return text(Plain(raw))


def _names(entries: Sequence[Entry], tag: bool) -> Text:
    """A list of people, the first ``NAMES_SHOWN`` by name and the rest as a count: a report
    for thousands stays readable (and inside Slack's and Discord's message limits), and a
    ``tag_missing`` standup never pings a crowd."""
    parts: list[Inline | str] = []
    for n, entry in enumerate(entries[:NAMES_SHOWN]):
        if n:
            parts.append(", ")
        if tag:
            parts.append(UserMention(entry.member.platform_user_id, entry.name))
        else:
            parts.append(Plain(entry.name))
    if len(entries) > NAMES_SHOWN:
        parts.append(f" and {len(entries) - NAMES_SHOWN:,} more")
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
    unreachable = roster.unreachable
    if unreachable:
        # Never tagged: the prompt did not reach them, a ping would not help.
        blocks.append(
            Section(text("Unreachable (I can't DM them): ", _names(unreachable, tag=False)))
        )
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
        payload: dict[str, Any] | None = None,
    ) -> tuple[int, int]:
        """Post ``msg`` under ``base`` if it never was, else update it if it changed since the
        last version queued. ``version`` is the message's update count when it is kept in a
        column (its last payload is then one exact-key lookup), None to look it up by prefix.
        Returns the original's outbox id and the new version (0 = never updated)."""
        if payload is None:
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
                payload=payload,
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
            payload=payload,
        )
        return original, version

    async def publish_people(
        self, replies: Sequence[_Reply], thread_of: int | None
    ) -> list[dict[str, Any]]:
        """:meth:`publish` for the per-person replies, in a few statements for all of them
        (their outbox id and version are on their prompts). Returns the prompts' new values."""
        changes: list[dict[str, Any]] = []
        fresh = [r for r in replies if r.prompt is not None and r.prompt.report_outbox_id is None]
        known = [r for r in replies if r.prompt is not None and r.prompt.report_outbox_id]
        target = Target(channel_id=self.channel_id)
        if fresh:
            ids, new = await enqueue_many(
                self.session,
                [
                    Outgoing(
                        self.workspace_id,
                        Method.POST,
                        target,
                        r.message,
                        r.base,
                        thread_of,
                        r.payload,
                    )
                    for r in fresh
                ],
                self.now,
            )
            self.sent = self.sent or bool(new)
            for r in fresh:
                assert r.prompt is not None
                if r.base in new:
                    changes.append(_prompt_change(r.prompt, ids[r.base], 0))
                else:  # queued before, its id not kept (a refresh that died): the slow way
                    outbox_id, version = await self.publish(
                        r.base,
                        r.message,
                        original=None,
                        version=None,
                        thread_of=thread_of,
                        payload=r.payload,
                    )
                    changes.append(_prompt_change(r.prompt, outbox_id, version))
        if known:
            last_key = {
                _version_key(r.base, r.prompt.report_version): r
                for r in known
                if r.prompt is not None
            }
            last: dict[str, Any] = {}
            keys = list(last_key)
            for start in range(0, len(keys), WRITE_SLICE):  # payloads: JSON to decode
                rows = await self.session.execute(
                    select(OutboxMessage.idempotency_key, OutboxMessage.payload).where(
                        OutboxMessage.idempotency_key.in_(keys[start : start + WRITE_SLICE])
                    )
                )
                last.update(dict(rows.tuples().all()))
            updates: list[Outgoing] = []
            for key, r in last_key.items():
                assert r.prompt is not None
                if last.get(key) == r.payload:
                    continue
                version = r.prompt.report_version + 1
                updates.append(
                    Outgoing(
                        self.workspace_id,
                        Method.UPDATE,
                        target,
                        r.message,
                        _version_key(r.base, version),
                        r.prompt.report_outbox_id,
                        r.payload,
                    )
                )
                changes.append(_prompt_change(r.prompt, r.prompt.report_outbox_id, version))
            if updates:
                await enqueue_many(self.session, updates, self.now)
                self.sent = True
        return changes


def _prompt_change(prompt: PromptState, outbox_id: int | None, version: int) -> dict[str, Any]:
    prompt.report_outbox_id, prompt.report_version = outbox_id, version
    return {"id": prompt.id, "report_outbox_id": outbox_id, "report_version": version}


@dataclass
class _Reply:
    """A reply in the report's thread, rendered: a person's (``prompt`` holds its outbox id and
    version) or a question's (``prompt`` None: looked up by key prefix)."""

    base: str
    message: Message
    prompt: PromptState | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.payload:
            self.payload = MESSAGE_ADAPTER.dump_python(self.message, mode="json")


@dataclass
class _Rendered:
    parent: Message
    replies: list[_Reply]
    parent_payload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.parent_payload:
            self.parent_payload = MESSAGE_ADAPTER.dump_python(self.parent, mode="json")


async def _lock_run(session: AsyncSession, run_id: int) -> StandupRun | None:
    return await session.scalar(
        select(StandupRun)
        .where(StandupRun.id == run_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def _take_marks(session: AsyncSession, run: StandupRun) -> tuple[set[int], bool]:
    """Clear the run's marks (its prompts' ``report_dirty`` and its ``report_dirty_since``) and
    count the take, if there was anything to take, in ``report_generation``. Returns the marked
    prompt ids and whether the run was marked. Call it with the run locked."""
    marked = run.report_dirty_since is not None
    dirty = set(
        await session.scalars(
            update(StandupPrompt)
            .where(StandupPrompt.run_id == run.id, StandupPrompt.report_dirty.is_(True))
            .values(report_dirty=False)
            .returning(StandupPrompt.id)
            .execution_options(synchronize_session=False)
        )
    )
    if dirty or marked:
        run.report_dirty_since = None
        run.report_generation += 1
    return dirty, marked


async def _render(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    now: datetime,
    *,
    first_post: bool,
    dirty: set[int],
    member_id: int | None,
    dirty_only: bool,
    publish_empty: bool,
) -> _Rendered | None:
    """The parent and the replies to queue (see :func:`refresh` for which); None when a first
    post would be empty and ``publish_empty`` is False."""
    # Answers are needed for what is rendered: every reply on a first post, in the parent
    # (inline) or per question; otherwise only the replies of the prompts that changed.
    answers_of: set[int] | None = None
    if not first_post and standup.report_layout != "inline" and standup.group_by != "question":
        if member_id is not None:
            answers_of = set(
                await session.scalars(
                    select(StandupPrompt.id).where(
                        StandupPrompt.run_id == run.id, StandupPrompt.member_id == member_id
                    )
                )
            )
        elif dirty_only:
            answers_of = dirty
    roster = await load_roster(session, standup, run, answers_of=answers_of)
    answered = roster.answered
    if first_post and not answered and not publish_empty:
        return None
    times = await run_times(session, standup, run)
    closed = now >= times.cutoff_at
    build = functools.partial(
        _build, standup, run, roster, closed, first_post, dirty, member_id, dirty_only
    )
    if len(roster.entries) < _THREAD_AT:
        return build()
    # A large report is seconds of pure Python (thousands of names, their JSON): in a thread,
    # the event loop still gets its turn every few milliseconds (the GIL's switch interval)
    # instead of waiting for all of it, so answers are not held up.
    return await asyncio.to_thread(build)


def _build(
    standup: Standup,
    run: StandupRun,
    roster: Roster,
    closed: bool,
    first_post: bool,
    dirty: set[int],
    member_id: int | None,
    dirty_only: bool,
) -> _Rendered:
    answered = roster.answered
    base = report_key(standup, run)
    rendered = _Rendered(parent_message(standup, run, roster, closed=closed), [])
    if standup.report_layout == "inline":
        return rendered
    if standup.group_by == "question":
        if answered:
            for i in range(len(standup.questions)):
                reply = message(*_question_sections(standup, i, answered))
                rendered.replies.append(_Reply(f"{base}:q{i}", reply))
        return rendered
    for entry in answered:
        assert entry.prompt is not None
        if not first_post:
            if member_id is not None and entry.member.id != member_id:
                continue
            if dirty_only and entry.prompt.id not in dirty:
                continue
        reply = message(*_person_sections(standup, entry))
        rendered.replies.append(_Reply(f"{base}:m{entry.member.id}", reply, entry.prompt))
    return rendered


async def _publish(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    rendered: _Rendered,
    now: datetime,
    *,
    parent: bool = True,
    people: Sequence[_Reply] | None = None,
) -> bool:
    """Queue what changed: the parent and the per-question replies (unless ``parent`` is
    False), then the per-person replies (all of them, or ``people``: :func:`refresh_apart`
    queues them in slices). Call it with the run locked."""
    channel = await session.get(Channel, standup.report_channel_id)
    if channel is None:
        return False
    out = _Publisher(session, standup.workspace_id, channel.external_id, now)
    if parent:
        run.report_outbox_id, run.report_version = await out.publish(
            report_key(standup, run),
            rendered.parent,
            original=run.report_outbox_id,
            version=run.report_version,
            payload=rendered.parent_payload,
        )
        for reply in rendered.replies:
            if reply.prompt is None:
                await out.publish(
                    reply.base,
                    reply.message,
                    original=None,
                    version=None,
                    thread_of=run.report_outbox_id,
                    payload=reply.payload,
                )
    if people is None:
        people = [r for r in rendered.replies if r.prompt is not None]
    changes = await out.publish_people(people, run.report_outbox_id)
    for start in range(0, len(changes), WRITE_SLICE):
        await session.execute(update(StandupPrompt), changes[start : start + WRITE_SLICE])
    if out.sent:
        # What the channel shows changed: a refresh rendering apart since before this must not
        # publish its older picture over it.
        run.report_generation += 1
    return out.sent


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
    """Bring the run's report up to date in this transaction; post it first if ``publish`` and
    it does not exist yet (with ``publish_empty`` False, only once someone has answered).
    Returns whether anything was queued.

    Of the per-person replies, all are looked at, or with ``member_id`` only that member's, or
    with ``dirty_only`` only those of prompts marked ``report_dirty``; a first post posts them all.
    With ``dirty_only`` a run with nothing marked is left alone (nothing changed since the last
    refresh; a second replica refreshing the same run finds exactly that).

    It locks the run row first, so refreshes of one run (two replicas, the close occurrence and
    the refresher) happen one after the other and never compute the same version with different
    contents. Then it takes the run's marks *before* reading the roster: every change that set
    a mark taken here has committed and is in what is rendered; a mark set after that stays for
    the next refresh. (:func:`refresh_apart` is the same with the rendering outside the lock.)
    """
    locked = await _lock_run(session, run.id)
    if locked is None:
        return False
    run = locked
    dirty, marked = await _take_marks(session, run)
    if dirty_only and not dirty and not marked:
        return False
    if run.report_outbox_id is None and not publish:
        return False  # the marks are moot: a first post renders everything
    if await session.get(Channel, standup.report_channel_id) is None:
        return False
    rendered = await _render(
        session,
        standup,
        run,
        now,
        first_post=run.report_outbox_id is None,
        dirty=dirty,
        member_id=member_id,
        dirty_only=dirty_only,
        publish_empty=publish_empty,
    )
    if rendered is None:
        return False
    return await _publish(session, standup, run, rendered, now)


async def refresh_marked(
    session: AsyncSession, standup: Standup, run: StandupRun, now: datetime
) -> bool:
    """The refresh after answers, skips and edits (the sweep), in the caller's transaction:
    what is marked, posting the report first in "each" mode once someone has answered (no empty
    "Heard from 0"), nothing before the window's end in "cutoff" mode (the close posts
    everything)."""
    return await refresh(
        session,
        standup,
        run,
        now,
        publish=standup.report_mode == "each",
        dirty_only=True,
        publish_empty=False,
    )


class Refreshed(Enum):
    NOTHING = "nothing"  # nothing marked, or nothing changed
    SENT = "sent"  # something was queued
    CONTENDED = "contended"  # another refresh took the marks meanwhile: ours were put back


async def refresh_apart(db: Database, run_id: int, now: datetime) -> Refreshed:
    """:func:`refresh_marked` in three transactions, so that no writer waits while a large
    report renders (on SQLite a write transaction holds the only write lock; on PostgreSQL the
    run's row lock would hold up the answers' marks):

    1. a short write: lock the run, take its marks, count the take (``report_generation``);
    2. a read snapshot (:meth:`Database.read`, no lock): load the roster and render. Everything
       whose mark was taken in 1 committed before 1, so it is in the snapshot;
    3. short writes: lock the run again; if no other refresh has taken marks or published since
       1, queue what changed (the parent first, then the replies in slices of
       ``PUBLISH_SLICE``, each slice its own transaction). If one has (a replica, the sweep, the
       window's close), what it shows may be newer than ours: the rest of ours is dropped and
       its marks are put back for the next refresh (``CONTENDED``), so that nothing published
       goes back in time and nothing is lost.
    """
    async with db.transaction() as session:
        run = await _lock_run(session, run_id)
        standup = None if run is None else await session.get(Standup, run.standup_id)
        if run is None or standup is None:
            return Refreshed.NOTHING
        dirty, marked = await _take_marks(session, run)
        if not dirty and not marked:
            return Refreshed.NOTHING
        first_post = run.report_outbox_id is None
        if first_post and standup.report_mode != "each":
            return Refreshed.NOTHING  # the marks are moot: the close posts everything
        generation = run.report_generation
    async with db.read() as session:
        run = await session.get(StandupRun, run_id)
        standup = None if run is None else await session.get(Standup, run.standup_id)
        if run is None or standup is None:
            return Refreshed.NOTHING
        if await session.get(Channel, standup.report_channel_id) is None:
            return Refreshed.NOTHING
        rendered = await _render(
            session,
            standup,
            run,
            now,
            first_post=first_post,
            dirty=dirty,
            member_id=None,
            dirty_only=True,
            publish_empty=False,
        )
    if rendered is None:
        return Refreshed.NOTHING
    # The parent (and per-question replies) in one short write, then the per-person replies in
    # slices, each its own short write: on SQLite every write holds the one write lock, and a
    # first post of thousands of replies must not hold up the answers meanwhile. Each slice
    # checks that no other refresh has moved the run since; one that has gets the rest of our
    # marks back.
    replies = [r for r in rendered.replies if r.prompt is not None]
    sent = False
    slices = range(0, max(len(replies), 1), PUBLISH_SLICE)
    for n, start in enumerate(slices):
        async with db.transaction() as session:
            run = await _lock_run(session, run_id)
            standup = None if run is None else await session.get(Standup, run.standup_id)
            if run is None or standup is None:
                return Refreshed.NOTHING
            if run.report_generation != generation:
                left = {r.prompt.id for r in replies[start:] if r.prompt is not None}
                await _put_marks_back(session, run, dirty if n == 0 else left, now)
                return Refreshed.CONTENDED
            part = replies[start : start + PUBLISH_SLICE]
            published = await _publish(
                session, standup, run, rendered, now, parent=n == 0, people=part
            )
            sent = sent or published
            # Ours now: a later slice finds it unchanged unless someone else moved the run.
            run.report_generation += 1
            generation = run.report_generation
    return Refreshed.SENT if sent else Refreshed.NOTHING


async def _put_marks_back(
    session: AsyncSession, run: StandupRun, prompt_ids: set[int], now: datetime
) -> None:
    if run.report_dirty_since is None:
        run.report_dirty_since = now
    ids = list(prompt_ids)
    for start in range(0, len(ids), _PARTITION):
        await session.execute(
            update(StandupPrompt)
            .where(StandupPrompt.id.in_(ids[start : start + _PARTITION]))
            .values(report_dirty=True)
            .execution_options(synchronize_session=False)
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
    "refresh_apart",
    "refresh_marked",
]
