"""Poll votes, group-committed (see :mod:`bot.batching`).

A poll posted to 12,000 people is answered in a minute; one transaction per click took 109 s
on PostgreSQL. A batch of clicks is one transaction instead: the polls' rows share-locked (as a
single vote locks its poll, so a close waits for the batch or the batch sees the close), the
clicking members and their participation rows loaded (and locked) in one query per poll, every
ballot of a poll replaced with three statements (:func:`ballots.cast_many`).

What stays as on the one-event path (:func:`service.vote`):

* every click gets its own private answer: "Your vote is in", "Your vote is changed to" (a
  second click of the same member in the same batch is a change of the first, in the order they
  came), or the error that says what to fix (a closed poll, a choice that is not in the poll, a
  vote that can no longer change after a reopen), with nothing written for it;
* a member gets one ballot (their last choices), counted once;
* anything the batch would have to look up or update elsewhere (a member it has not seen, a new
  display name, a voter outside the poll's audience: the platform decides whether they joined
  its channel, an unknown poll or button) goes back to the one-event path, one at a time.

Anonymity (invariant 6): the ballots of a batch are written sorted by their keys, with no time;
nothing here logs a choice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, tuple_

from bot.batching import Batch, BatchItem
from bot.chat import marked, reply
from bot.errors import UserError
from bot.events import ActionInvocation
from bot.features.polls import ballots, render
from bot.features.polls.service import check_open, load_poll, zone_of
from storage.models import Member, Workspace
from storage.polls import Poll, ResultsVisibility

log = logging.getLogger(__name__)

# Clicks per transaction: large enough that 12,000 clicks at once take a few dozen batches,
# small enough that each statement stays inside SQLite's bound-parameter limit.
MAX_VOTES = 500


@dataclass
class _Click:
    item: BatchItem[ActionInvocation]
    poll_id: int
    choices: list[int]
    member: Member | None = None


def _parse(item: BatchItem[ActionInvocation]) -> _Click | None:
    event = item.event
    parts = event.action_id.split(":")
    raw = list(event.values) or ([event.value] if event.value else [])
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    try:
        return _Click(item, int(parts[1]), [int(value) for value in raw])
    except ValueError:
        return None


def _unchanged(member: Member, workspace: Workspace, event: ActionInvocation) -> bool:
    """Whether the one-event path would leave the member and workspace as they are
    (``directory.ensure_workspace`` / ``ensure_member``): else it takes the click."""
    actor, origin = event.actor, event.origin
    return (
        (not origin.workspace_name or origin.workspace_name == workspace.name)
        and member.is_platform_admin == actor.is_platform_admin
        and (not actor.display_name or actor.display_name == member.display_name)
        and (
            not actor.timezone or member.timezone_set_by_member or actor.timezone == member.timezone
        )
    )


async def _members(batch: Batch[ActionInvocation], clicks: list[_Click]) -> None:
    """Find each click's member and workspace (one query)."""
    places = {(c.item.event.origin.platform, c.item.event.origin.workspace_id) for c in clicks}
    users = sorted({c.item.event.actor.user_id for c in clicks})
    rows = await batch.session.execute(
        select(Member, Workspace)
        .join(Workspace, Workspace.id == Member.workspace_id)
        .where(
            tuple_(Workspace.platform, Workspace.external_id).in_(sorted(places)),
            Member.platform_user_id.in_(users),
        )
    )
    found = {(w.platform, w.external_id, m.platform_user_id): (m, w) for m, w in rows.tuples()}
    for click in clicks:
        event = click.item.event
        pair = found.get((event.origin.platform, event.origin.workspace_id, event.actor.user_id))
        if pair is None or not _unchanged(*pair, event):
            click.item.fallback = True  # someone new, or something to update: the one-event path
        else:
            click.member = pair[0]


def _refuse(click: _Click, error: UserError) -> None:
    log.info("user error in vote (event %s): %s", click.item.event.origin.event_id, error.message)
    click.item.response = reply(marked(error.message))


async def on_vote_batch(batch: Batch[ActionInvocation]) -> None:
    clicks: list[_Click] = []
    for item in batch.items:
        click = _parse(item)
        if click is None:
            item.fallback = True  # a stale button: the one-event path says so
        else:
            clicks.append(click)
    if not clicks:
        return
    await _members(batch, clicks)
    by_poll: dict[int, list[_Click]] = {}
    for click in clicks:
        if click.member is not None:
            by_poll.setdefault(click.poll_id, []).append(click)
    for poll_id in sorted(by_poll):  # locks taken in poll order: batches never deadlock
        poll = await load_poll(batch.session, poll_id, lock="share")
        await _vote_in(batch, poll, by_poll[poll_id])


async def _vote_in(batch: Batch[ActionInvocation], poll: Poll | None, clicks: list[_Click]) -> None:
    """The clicks of one poll, in the order they came."""
    taken: list[tuple[_Click, int]] = []  # with the member's id
    for click in clicks:
        member = click.member
        assert member is not None
        if poll is None or poll.workspace_id != member.workspace_id:
            click.item.fallback = True  # "That poll no longer exists."
            continue
        try:
            check_open(poll, batch.now, zone_of(member))
            ballots.check_choices(poll, click.choices, None)
        except UserError as error:
            _refuse(click, error)
            continue
        taken.append((click, member.id))
    if poll is None or not taken:
        return
    state = await ballots.lock_voters(batch.session, poll, {m for _, m in taken})
    voted_before = {member for member, (voted, _) in state.items() if voted}
    voted = set(voted_before)
    last: dict[int, Sequence[int]] = {}
    for click, member_id in taken:
        if member_id not in state:
            click.item.fallback = True  # outside the audience: may they join? (the platform)
            continue
        if state[member_id][1]:
            _refuse(click, UserError(ballots.FINAL_MESSAGE))
            continue
        replaced = member_id in voted
        voted.add(member_id)
        last[member_id] = click.choices
        click.item.response = reply(render.vote_receipt(poll, click.choices, replaced))
    await ballots.cast_many(batch.session, poll, last, voted_before)
    if (
        last
        and not poll.anonymous
        and poll.round_id is None
        and poll.results == ResultsVisibility.LIVE.value
    ):
        from bot.features.polls import live

        refresher = live.live_of(batch.core)
        if refresher is not None:
            batch.after_commit(functools.partial(refresher.poke, poll.id))
