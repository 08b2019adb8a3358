"""A day at scale, proven: three ``syncup run`` replicas, one PostgreSQL, a fake Slack, faults.

Three real ``syncup run`` processes (Slack HTTP mode, OAuth installs) share one fresh PostgreSQL
database behind a round-robin TCP proxy, against the fake Slack on 127.0.0.1
(tests/fakes/slack/server.py, the adapter tests' fake) holding WORKSPACES workspaces of MEMBERS
members in 20 zones, at Slack's limits per workspace, per channel and per method
(benchmarks/scale_world.py). One standup per zone in each workspace (a team per zone, in its
own time zone: three questions, a reminder after 30 minutes, answers for an hour, a report reply
per answer; one member in ten names a blocker).

The simulated day: every replica's clock is real time plus an offset the benchmark writes to a
file (``[bot] clock_offset_file``, bot.clock.OffsetFileClock). Time runs at real speed while
there is work (leases, heartbeats and Slack's limits stay honest); when everything is quiet
(no answer in flight, nothing pending in the outbox) the benchmark moves every clock to shortly
before the next event, as the console's /clock does for one process. The events: each zone's
09:00 (every member's prompt), the answers (90% of the members press "Answer" within two minutes
and submit the modal: signed block_actions and view_submission requests as Slack sends them,
through the proxy), the reports, the reminders half an hour later for the rest, and POLLS
anonymous polls per workspace (``/poll ... --anonymous --closes 2h``) with VOTERS voters each,
closed by the scheduler two hours later. ``--time-limit`` ends the day early (the figures then
cover what ran); ``--days N`` repeats it (the soak: memory at each day's start).

Faults: during the first zone's prompts, a quarter in, one replica is killed with SIGKILL
(restarted 30 s later); two thirds in, the replicas' connections to PostgreSQL are cut for
OUTAGE seconds. The machine's PostgreSQL is shared, so it is not stopped: the replicas reach it
through a TCP proxy (tests/fakes/tcp_proxy.py) that closes its listener and every connection,
which is what a stopped server looks like from the replicas.

It prints: each zone's prompts' delivery time against the bound Slack's limits set, the 429s,
duplicates and losses counted at the fake (prompts, reminders, report replies, polls) and in the
database (each anonymous poll's voters), p50/p99 of the handling time of answers and votes (the
acknowledgement's round trip through the proxy), the takeover time of the killed replica's
leased rows, each replica's peak memory (/proc VmHWM) and the load average.

Run from the repository root (PostgreSQL on 127.0.0.1:5432, user postgres, trust)::

    .venv/bin/python benchmarks/scale_day.py --workspaces 5 --members 50     # a quick one
    .venv/bin/python benchmarks/scale_day.py                                 # 100 x 500
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from benchmarks import scale_world as world  # noqa: E402
from benchmarks.scale_tally import Post, Tally, counted, find_button, percentile  # noqa: E402
from benchmarks.standup_fanout import _pg_admin, scratch_database  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.models import OutboxMessage, OutboxStatus  # noqa: E402
from storage.polls import Poll  # noqa: E402
from tests.fakes.slack import payloads  # noqa: E402
from tests.fakes.slack.server import start_fake_slack  # noqa: E402

LEAD = timedelta(seconds=20)  # a jump lands this long before the next event
ANSWER_SPREAD = 120.0  # members answer within this many seconds of their prompt
# A request that failed (a replica killed, the database away, no answer in time) is sent again
# after these pauses, as Slack retries an event and a person clicks again; then it is lost.
RETRIES = (2.0, 10.0, 30.0)


class NotQuiet(Exception):
    pass


@dataclass
class Event:
    at: datetime
    kind: str  # prompt | reminder | polls | close-polls | end
    zone: int = -1
    day: int = 0


@dataclass
class Timings:
    answers: list[float] = field(default_factory=list)
    presses: list[float] = field(default_factory=list)
    votes: list[float] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)


class Day:
    def __init__(self, args: argparse.Namespace, url: str) -> None:
        self.args = args
        self.url = url  # direct, for the benchmark's own look-ups
        self.tally = Tally()
        self.timings = Timings()
        self.inflight: set[asyncio.Task[None]] = set()
        self.replicas: list[world.Replica] = []
        self.notes: list[str] = []
        self.zone_spans: dict[tuple[int, int], tuple[float, float, int]] = {}
        self.takeover: dict[str, float] = {}
        self.polls_expected = 0
        self.poll_voters: list[tuple[int, int | None]] = []
        self.voters = min(args.voters, args.members - 1)
        self._http: aiohttp.ClientSession | None = None
        self.proxy_port = 0
        self.fake: Any = None
        self.clock_file = Path()
        self.offset = 0.0
        self.db = Database(url)
        self.stopped_at: datetime | None = None
        self.prompted: Counter[int] = Counter()  # prompt events run, by zone
        self.reminded: Counter[int] = Counter()
        self.sim_begin = datetime.now(UTC)

    # -- the clock -------------------------------------------------------------------------

    def sim_now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.offset)

    def jump_to(self, when: datetime) -> None:
        offset = (when - datetime.now(UTC)).total_seconds()
        if offset > self.offset:
            self.offset = offset
            tmp = self.clock_file.with_suffix(".tmp")
            tmp.write_text(f"{offset:.3f}")
            tmp.replace(self.clock_file)

    # -- Slack's requests ----------------------------------------------------------------------

    async def send(self, kind: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """One signed request through the proxy, retried while it fails (a replica killed or
        the database away); returns the status, body and the last attempt's round trip."""
        assert self._http is not None
        raw, ctype = payloads.http_body(kind, payload)
        url = f"http://127.0.0.1:{self.proxy_port}/slack/events"
        pauses = list(RETRIES)
        while True:
            headers = {"Content-Type": ctype, **payloads.sign(world.SIGNING_SECRET, raw)}
            started = time.monotonic()
            try:
                async with self._http.post(url, data=raw, headers=headers) as response:
                    text = await response.text()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError):
                status, text = 599, ""
            took = time.monotonic() - started
            if status < 500 or not pauses:
                try:
                    import json

                    body = json.loads(text) if text else {}
                except ValueError:
                    body = {}
                return status, body if isinstance(body, dict) else {}, took
            self.timings.failed[str(payload.get("type") or kind)] += 1
            await asyncio.sleep(pauses.pop(0))

    def spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self.inflight.add(task)
        task.add_done_callback(self.inflight.discard)

    def on_prompt(self, user: str, post: Post) -> None:
        if self.answers(user) and len(self.tally.prompts[user]) <= self.args.days:
            self.spawn(self.answer(user, post))

    @staticmethod
    def answers(user: str) -> bool:
        n = int(user[-3:])
        return (n + n // 20) % 10 != 9  # 90% answer, the rest (in every zone) get a reminder

    async def answer(self, user: str, post: Post) -> None:
        await asyncio.sleep(random.uniform(0, ANSWER_SPREAD))
        button = find_button(post.blocks, "Answer")
        assert button is not None
        team = f"T{user[1:4]}"
        for _ in range(2):  # the modal did not open: press once more
            press = payloads.block_action(
                button["action_id"],
                user=user,
                channel=post.channel,
                message_ts=post.ts,
                value=button.get("value", ""),
                response_url=self.fake.response_url(),
                team=team,
            )
            view_future = self.tally.view_for(press["trigger_id"])
            status, _, took = await self.send("interactive", press)
            if status != 200:
                continue
            self.timings.presses.append(took)
            try:
                async with asyncio.timeout(30):
                    view = await view_future
            except TimeoutError:
                self.timings.failed["no modal"] += 1
                continue
            inputs = [b["element"]["action_id"] for b in view["blocks"] if b.get("type") == "input"]
            values = {name: f"done-{user} part {n}" for n, name in enumerate(inputs)}
            if int(user[-3:]) % 10:  # one member in ten names a blocker (the last question)
                values[inputs[-1]] = "no"
            submission = payloads.view_submission(view, values, user=user, team=team)
            status, body, took = await self.send("interactive", submission)
            if status == 200 and not body.get("errors"):
                self.timings.answers.append(took)
                self.tally.answered[user] += 1
                return
            self.timings.failed["answer refused"] += 1
        self.timings.failed["gave up"] += 1

    # -- waiting -----------------------------------------------------------------------------

    async def pending(self) -> int:
        async with self.db.transaction() as session:
            return int(
                await session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status == OutboxStatus.PENDING)
                )
                or 0
            )

    async def quiet(self, within: float) -> None:
        """Wait until nothing is in flight: only then may the clocks jump (a jump past a lease
        would hand rows being sent to another replica)."""
        deadline = time.monotonic() + within
        if self.args.time_limit:
            deadline = min(deadline, self.day_started + self.args.time_limit)
        while time.monotonic() < deadline:
            if not self.inflight and await self.pending() == 0:
                await asyncio.sleep(1.0)  # a refresh an answer set off may still queue
                if not self.inflight and await self.pending() == 0:
                    return
            await asyncio.sleep(0.5)
        self.notes.append(f"not quiet at {self.sim_now():%H:%M} sim")
        raise NotQuiet

    async def until(self, check: Any, within: float) -> bool:
        deadline = time.monotonic() + within
        if self.args.time_limit:
            deadline = min(deadline, self.day_started + self.args.time_limit)
        while time.monotonic() < deadline:
            if check():
                return True
            await asyncio.sleep(0.2)
        return False

    # -- the events -----------------------------------------------------------------------

    def zone_users(self, zone: int) -> list[str]:
        return [
            world.user_of(ws, n)
            for ws in range(self.args.workspaces)
            for n in range(self.args.members)
            if n % 20 == zone
        ]

    async def prompts(self, event: Event, fault: str) -> None:
        users = self.zone_users(event.zone)
        want = len(users)

        def arrived() -> int:
            return sum(1 for u in users if len(self.tally.prompts[u]) > event.day)

        if fault:  # a quarter in, kill -9 a replica; two thirds in, cut the database
            await self.until(lambda: arrived() >= want // 4, 600)
            self.spawn(self.kill_replica())
            await self.until(lambda: arrived() >= want * 2 // 3, 600)
            self.spawn(self.cut_database())
        ok = await self.until(lambda: arrived() >= want, 600)
        times = [
            self.tally.prompts[u][event.day].at
            for u in users
            if len(self.tally.prompts[u]) > event.day
        ]
        if times:
            self.zone_spans[(event.day, event.zone)] = (min(times), max(times), len(times))
        if not ok:
            self.notes.append(f"zone {event.zone}: {arrived()} of {want} prompts")

    async def create_polls(self) -> None:
        questions = []
        self.polls_expected += self.args.workspaces * self.args.polls
        for ws in range(self.args.workspaces):
            for k in range(self.args.polls):
                question = f"Scale poll {k} of {world.team_of(ws)}?"
                questions.append((ws, question))
                command = payloads.slash_command(
                    "/poll",
                    f'"{question}" Red Green Blue --anonymous --closes 2h',
                    user=world.user_of(ws, 0),
                    channel=world.channel_of(ws),
                    channel_name="standup",
                    response_url=self.fake.response_url(),
                    team=world.team_of(ws),
                )
                self.spawn(self.send("slash_commands", command))

        def posted(ws: int, question: str) -> Post | None:
            for post in self.tally.channel_posts[world.channel_of(ws)]:
                if question in post.text and find_button(post.blocks, "Red"):
                    return post
            return None

        await self.until(lambda: all(posted(ws, q) for ws, q in questions), 600)
        gate = asyncio.Semaphore(self.args.concurrency)
        for ws, question in questions:
            post = posted(ws, question)
            if post is None:
                self.notes.append(f"poll {question!r} never posted")
                continue
            for n in range(1, self.voters + 1):
                self.spawn(self.vote(gate, ws, n, post))

    async def vote(self, gate: asyncio.Semaphore, ws: int, n: int, post: Post) -> None:
        label = ("Red", "Green", "Blue")[n % 3]
        button = find_button(post.blocks, label)
        assert button is not None
        async with gate:
            press = payloads.block_action(
                button["action_id"],
                user=world.user_of(ws, n),
                channel=post.channel,
                message_ts=post.ts,
                value=button.get("value", ""),
                response_url=self.fake.response_url(),
                team=world.team_of(ws),
            )
            status, _, took = await self.send("interactive", press)
            if status == 200:
                self.timings.votes.append(took)
            else:
                self.timings.failed[f"vote {status}"] += 1

    async def polls_closed(self) -> None:
        async def closed() -> list[tuple[int, int | None]]:
            async with self.db.transaction() as session:
                rows = await session.execute(
                    select(Poll.id, Poll.published_voters, Poll.closed_at).where(
                        Poll.round_id.is_(None)
                    )
                )
                return [(r[0], r[1]) for r in rows.all() if r[2] is not None]

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = await closed()
            if len(done) >= self.args.workspaces * self.args.polls:
                break
            await asyncio.sleep(1)
        self.poll_voters = await closed()

    # -- faults ----------------------------------------------------------------------------

    async def kill_replica(self) -> None:
        victim = self.replicas[1]
        async with self.db.transaction() as session:
            held = list(
                await session.scalars(
                    select(OutboxMessage.id).where(
                        OutboxMessage.leased_by == victim.name,
                        OutboxMessage.status == OutboxStatus.PENDING,
                    )
                )
            )
        await victim.kill()
        killed = time.monotonic()
        self.takeover["held"] = len(held)
        restart = asyncio.ensure_future(self._restart(victim, 30.0))
        while held and time.monotonic() - killed < 120:
            async with self.db.transaction() as session:
                rows = (
                    await session.execute(
                        select(OutboxMessage.status, OutboxMessage.leased_by).where(
                            OutboxMessage.id.in_(held)
                        )
                    )
                ).all()
            moved = [r for r in rows if r[0] != OutboxStatus.PENDING or r[1] != victim.name]
            if moved and "first" not in self.takeover:
                self.takeover["first"] = time.monotonic() - killed
            if all(r[0] != OutboxStatus.PENDING for r in rows):
                self.takeover["all"] = time.monotonic() - killed
                break
            await asyncio.sleep(0.1)
        try:
            await restart
        except RuntimeError as exc:  # the run ended while it restarted
            self.notes.append(f"restart of {victim.name}: {exc}")

    async def _restart(self, replica: world.Replica, after: float) -> None:
        await asyncio.sleep(after)
        await replica.start()
        assert replica.proc is not None
        await world.wait_ready(replica.port, replica.proc)

    async def cut_database(self) -> None:
        await self.pg.down()
        self.notes.append(
            f"database cut for {self.args.outage:.0f} s at {self.sim_now():%H:%M} sim"
        )
        await asyncio.sleep(self.args.outage)
        await self.pg.up()

    async def sample_memory(self) -> None:
        while True:
            for replica in self.replicas:
                replica.sample()
            # The tally has seen every call; the fake's own record of them is not needed.
            self.fake.calls.clear()
            self.fake.timeline.clear()
            await asyncio.sleep(1.0)

    # -- the run -----------------------------------------------------------------------------

    def schedule(self, start_day: datetime) -> tuple[datetime, list[Event]]:
        """The events of DAYS days, from just before the first zone's 09:00 after the longest
        quiet gap (so that no occurrence counts as missed when the replicas start)."""
        instants = sorted(
            (
                datetime.combine(start_day.date() + timedelta(days=d), datetime.min.time())
                .replace(hour=9, tzinfo=ZoneInfo(world.zone_of(z)))
                .astimezone(UTC),
                z,
            )
            for d in (-1, 0, 1)
            for z in range(20)
        )
        gaps = [(instants[i][0] - instants[i - 1][0], i) for i in range(1, len(instants))]
        first = instants[max(gaps)[1]][0]
        begin = first - timedelta(seconds=30)
        events: list[Event] = []
        for day in range(self.args.days):
            base = begin + timedelta(days=day)
            for at, zone in instants:
                for d in range(-2, 3):
                    t = at + timedelta(days=d)
                    if base <= t < base + timedelta(days=1) and (t, zone) not in [
                        (e.at, e.zone) for e in events
                    ]:
                        events.append(Event(t, "prompt", zone, day))
                        events.append(
                            Event(
                                t + timedelta(minutes=world.REMINDER_MINUTES), "reminder", zone, day
                            )
                        )
            polls_at = base + timedelta(hours=2, minutes=7)
            events.append(Event(polls_at, "polls", day=day))
            events.append(Event(polls_at + timedelta(hours=2, minutes=1), "close-polls", day=day))
        events.append(Event(begin + timedelta(days=self.args.days), "end"))
        events.sort(key=lambda e: e.at)
        return begin, events

    async def run(self, pg: Any, fake: Any, workdir: Path) -> None:
        self.pg, self.fake = pg, fake
        self.clock_file = workdir / "clock-offset"
        begin, events = self.schedule(datetime.now(UTC) + timedelta(days=2))
        # The replicas start well before the first event (a start reads every schedule).
        self.jump_to(begin - timedelta(minutes=20))
        self.sim_begin = begin
        replica_url = make_url(self.url).set(host="127.0.0.1", port=pg.port)
        replica_url_text = replica_url.render_as_string(hide_password=False)
        for n in range(self.args.replicas):
            port = free_port()
            name = f"replica-{n + 1}"
            config = workdir / f"{name}.toml"
            config.write_text(
                world.config_text(name, replica_url_text, fake.api_url, port, self.clock_file, 15.0)
            )
            self.replicas.append(world.Replica(name, config, port, workdir / f"{name}.log"))
        started = time.monotonic()
        for replica in self.replicas:
            await replica.start()
        for replica in self.replicas:
            assert replica.proc is not None
            await world.wait_ready(replica.port, replica.proc, within=900)
        proxy = world.RoundRobinProxy([r.port for r in self.replicas])
        await proxy.start()
        self.proxy_port = proxy.port
        self.tally.on_prompt.append(self.on_prompt)
        fake.on_call.append(self.tally.listen)
        sampler = asyncio.ensure_future(self.sample_memory())
        connector = aiohttp.TCPConnector(limit=256, force_close=True)
        self._http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        )
        prompt_events = 0
        self.day_started = time.monotonic()
        print(f"replicas ready in {self.day_started - started:.0f} s", flush=True)
        self.day_rss: list[list[float]] = []
        try:
            for done, event in enumerate(events):
                if (
                    self.args.time_limit
                    and time.monotonic() - self.day_started > self.args.time_limit
                ):
                    self.notes.append(
                        f"--time-limit reached: stopped before event {done + 1} of {len(events)} "
                        f"({event.kind} at {event.at:%H:%M} sim); the figures cover what ran"
                    )
                    self.stopped_at = event.at
                    break
                try:
                    await self.quiet(3600)
                except NotQuiet:
                    self.stopped_at = event.at
                    self.notes.append(f"stopped before {event.kind} at {event.at:%H:%M} sim")
                    break
                if self.args.progress:
                    print(
                        f"{time.monotonic() - self.day_started:7.0f} s: {event.kind} "
                        f"{event.zone if event.zone >= 0 else ''} at {event.at:%H:%M} sim",
                        flush=True,
                    )
                if event.kind != "end" and event.at - LEAD > self.sim_now():
                    self.jump_to(event.at - LEAD)
                if event.kind == "prompt":
                    fault = "kill, cut" if event.day == 0 and prompt_events == 0 else ""
                    prompt_events += 1
                    self.prompted[event.zone] += 1
                    await self.prompts(event, fault)
                elif event.kind == "polls":
                    await self.until(lambda at=event.at: self.sim_now() >= at, 60)
                    await self.create_polls()
                elif event.kind == "close-polls":
                    await self.polls_closed()
                elif event.kind == "reminder":
                    self.reminded[event.zone] += 1
                    await self.until(
                        lambda at=event.at: self.sim_now() >= at + timedelta(seconds=5), 60
                    )
                if event.kind in ("polls", "end") or (
                    event.kind == "prompt" and event.zone == events[0].zone and event.day > 0
                ):
                    self.day_rss.append([max(r.rss[-5:] or [0.0]) for r in self.replicas])
            with contextlib.suppress(NotQuiet):
                await self.quiet(60 if self.stopped_at else 600)
            self.day_rss.append([max(r.rss[-5:] or [0.0]) for r in self.replicas])
            self.elapsed = time.monotonic() - self.day_started
        finally:
            sampler.cancel()
            await self._http.close()
            for replica in self.replicas:
                await replica.stop()
            await proxy.stop()
            await self.db.dispose()

    # -- the figures -------------------------------------------------------------------------

    def report(self) -> bool:
        a = self.args
        days = a.days
        members = [world.user_of(ws, n) for ws in range(a.workspaces) for n in range(a.members)]
        zone = {u: int(u[-3:]) % 20 for u in members}
        prompts_dup, prompts_lost = counted(
            {u: self.prompted[zone[u]] for u in members},
            {u: len(p) for u, p in self.tally.prompts.items()},
        )
        late = [u for u in members if not self.answers(u)]
        kinds = {"reminder": "A reminder: *daily", "thanks": "Thanks! Saved your answers"}
        got = {
            k: Counter(
                {
                    u: sum(1 for p in ps if p.text.startswith(mark))
                    for u, ps in self.tally.other_dms.items()
                }
            )
            for k, mark in kinds.items()
        }
        reminders_dup, reminders_lost = counted(
            {u: self.reminded[zone[u]] for u in late}, dict(got["reminder"])
        )
        thanks_dup, thanks_lost = counted(dict(self.tally.answered), dict(got["thanks"]))
        per_late = Counter(got["reminder"][u] for u in late)
        replies: Counter[str] = Counter()
        for posts in self.tally.channel_posts.values():
            for post in posts:
                for word in post.text.split():
                    if word.startswith("done-U") and post.text.count("part 0"):
                        replies[word.removeprefix("done-")] += 1
                        break
        answered = dict(self.tally.answered)
        replies_dup, replies_lost = counted(answered, dict(replies))
        polls = self.polls_expected
        voters_ok = sum(1 for _, n in getattr(self, "poll_voters", []) if n == self.voters)
        t = self.timings
        served, limited = self.tally.served, self.tally.rate_limited
        print(
            f"\nA day at scale: {a.workspaces} workspaces x {a.members} members in 20 zones, "
            f"{a.replicas} replicas, {days} day(s), {self.elapsed:.0f} s of real time"
        )
        spans = [(end - start, n) for start, end, n in self.zone_spans.values()]
        per_ws = a.members / 20
        bound = max(0.0, (per_ws - world.TEAM_POST_RATE[1]) / world.TEAM_POST_RATE[0])
        worst = max((s for s, _ in spans), default=0.0)
        median = sorted(s for s, _ in spans)[len(spans) // 2] if spans else 0.0
        ratio = worst / bound if bound else float("inf")
        print(
            f"  prompts per zone: {per_ws * a.workspaces:.0f} ({per_ws:.0f} a workspace); "
            f"delivered in median {median:.1f} s, worst {worst:.1f} s; the per-workspace limit "
            f"alone needs {bound:.1f} s (worst/bound {ratio:.1f}x)"
        )
        total = sum(served[m] for m in ("chat.postMessage", "chat.update", "chat.postEphemeral"))
        print(
            f"  messages sent: {total} (chat.postMessage {served['chat.postMessage']}, "
            f"chat.update {served['chat.update']}, views.open {served['views.open']})"
        )
        print(
            f"  429s: {sum(limited.values())} {dict(limited)}, "
            f"chat.postMessage by target: {dict(self.tally.limited_where)}"
        )
        print(f"  other DMs by kind: {self.tally.dm_kinds.most_common(6)}")
        of_prompts = sum(self.prompted[zone[u]] for u in members)
        of_reminders = sum(self.reminded[zone[u]] for u in late)
        print(f"  prompts: duplicates {prompts_dup}, losses {prompts_lost} (of {of_prompts})")
        print(
            f"  reminders: duplicates {reminders_dup}, losses {reminders_lost} "
            f"(of {of_reminders}); per late member: {dict(sorted(per_late.items()))}"
        )
        print(f"  answer confirmations (DM): duplicates {thanks_dup}, losses {thanks_lost}")
        print(
            f"  report replies: duplicates {replies_dup}, losses {replies_lost} "
            f"(of {sum(answered.values())})"
        )
        print(f"  polls closed with exactly {self.voters} voters: {voters_ok} of {polls}")
        print(
            f"  answers: {len(t.answers)}, p50 {_ms(t.answers, 50)}, p99 {_ms(t.answers, 99)} "
            f"(the Answer button: p99 {_ms(t.presses, 99)})"
        )
        print(f"  votes: {len(t.votes)}, p50 {_ms(t.votes, 50)}, p99 {_ms(t.votes, 99)}")
        print(f"  requests retried (replica killed, database cut): {dict(t.failed)}")
        print(
            f"  kill -9 of replica-2 holding {self.takeover.get('held', 0)} leased rows: "
            f"first taken over after {self.takeover.get('first', float('nan')):.1f} s, "
            f"all sent after {self.takeover.get('all', float('nan')):.1f} s"
        )
        for replica in self.replicas:
            peaks = ", ".join(f"{p:.0f}" for p in replica.peaks)
            print(f"  {replica.name}: peak memory {peaks} MiB (one figure per process)")
        if days > 1:
            for n, row in enumerate(self.day_rss):
                print(f"  memory at checkpoint {n}: " + ", ".join(f"{m:.0f}" for m in row) + " MiB")
        for note in self.notes:
            print(f"  note: {note}")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"  load average: {load} (2 cores, shared)")
        return prompts_dup == prompts_lost == replies_dup == replies_lost == 0


def keep(workdir: Path, folder: Path, tally: Tally) -> None:
    """The replicas' logs and what the fake counted, for a look after the run."""
    for log in workdir.glob("*.log"):
        (folder / log.name).write_bytes(log.read_bytes())
    (folder / "scale-day-tally.json").write_text(tally.dump())


def _ms(values: list[float], pct: float) -> str:
    return f"{percentile(values, pct) * 1000:.0f} ms"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def main_async(args: argparse.Namespace) -> int:
    url, name = await scratch_database(args.database_url)
    fake = await start_fake_slack()
    pg_url = make_url(url)
    pg = await world.pg_proxy(pg_url.host or "127.0.0.1", pg_url.port or 5432)
    try:
        world.configure_fake(fake, args.workspaces, args.members)
        started = time.monotonic()
        await world.seed(url, args.workspaces, args.members)
        print(
            f"seeded {args.workspaces} workspaces x {args.members} members in "
            f"{time.monotonic() - started:.1f} s"
        )
        day = Day(args, url)
        with tempfile.TemporaryDirectory(prefix="scale-day-") as tmp:
            try:
                await day.run(pg, fake, Path(tmp))
            finally:
                for replica in day.replicas:  # also when the start failed
                    await replica.stop()
                if args.keep_logs:
                    keep(Path(tmp), Path(args.keep_logs), day.tally)
        return 0 if day.report() else 1
    finally:
        await pg.down()
        await fake.stop()
        if name is not None:
            with contextlib.suppress(Exception):
                await _pg_admin(args.database_url, f'DROP DATABASE "{name}" WITH (FORCE)')


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--workspaces", type=int, default=100)
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--voters", type=int, default=300)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--outage", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=100, help="votes in flight at most")
    parser.add_argument(
        "--time-limit", type=float, default=0.0, help="stop the day after this many seconds"
    )
    parser.add_argument("--progress", action="store_true", help="print each event as it comes")
    parser.add_argument("--keep-logs", default="", help="copy the replicas' logs to this folder")
    args = parser.parse_args(argv)
    if args.members < 20 or args.replicas < 2:
        parser.error("--members must be at least 20 (one per zone) and --replicas at least 2")
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
