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
from collections.abc import Sequence
from datetime import datetime
from enum import Enum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.chat import (
    message,
)
from bot.delivery.outbox import WRITE_SLICE
from bot.features.standups.report_messages import (
    MOODS,
    NAMES_SHOWN,
    answer_text,
    day_label,
    nudge_message,
    parent_message,
    person_sections,
    question_sections,
)
from bot.features.standups.report_outbox import Publisher, Rendered, Reply, report_key
from bot.features.standups.roster import PARTITION, Entry, Roster, heard_from, load_roster
from bot.features.standups.schedules import run_times
from storage.db import Database
from storage.models import (
    Channel,
    Standup,
    StandupPrompt,
    StandupRun,
)

# Reports of this many people or more are rendered in a thread (see _render).
_THREAD_AT = 200
# Per-person replies queued per write transaction by refresh_apart.
PUBLISH_SLICE = 50


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
) -> Rendered | None:
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
) -> Rendered:
    answered = roster.answered
    base = report_key(standup, run)
    rendered = Rendered(parent_message(standup, run, roster, closed=closed), [])
    if standup.report_layout == "inline":
        return rendered
    if standup.group_by == "question":
        if answered:
            for i in range(len(standup.questions)):
                reply = message(*question_sections(standup, i, answered))
                rendered.replies.append(Reply(f"{base}:q{i}", reply))
        return rendered
    for entry in answered:
        assert entry.prompt is not None
        if not first_post:
            if member_id is not None and entry.member.id != member_id:
                continue
            if dirty_only and entry.prompt.id not in dirty:
                continue
        reply = message(*person_sections(standup, entry))
        rendered.replies.append(Reply(f"{base}:m{entry.member.id}", reply, entry.prompt))
    return rendered


async def _publish(
    session: AsyncSession,
    standup: Standup,
    run: StandupRun,
    rendered: Rendered,
    now: datetime,
    *,
    parent: bool = True,
    people: Sequence[Reply] | None = None,
) -> bool:
    """Queue what changed: the parent and the per-question replies (unless ``parent`` is
    False), then the per-person replies (all of them, or ``people``: :func:`refresh_apart`
    queues them in slices). Call it with the run locked."""
    channel = await session.get(Channel, standup.report_channel_id)
    if channel is None:
        return False
    out = Publisher(session, standup.workspace_id, channel.external_id, now)
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
    for start in range(0, len(ids), PARTITION):
        await session.execute(
            update(StandupPrompt)
            .where(StandupPrompt.id.in_(ids[start : start + PARTITION]))
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
    "NAMES_SHOWN",
    "Entry",
    "Roster",
    "answer_text",
    "day_label",
    "heard_from",
    "load_roster",
    "mark_dirty",
    "nudge_message",
    "parent_message",
    "refresh",
    "refresh_apart",
    "refresh_marked",
]
