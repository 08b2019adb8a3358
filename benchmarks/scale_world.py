"""The pieces of benchmarks/scale_day.py around the day itself: the fake Slack's limits, the
seeded workspaces, the replicas' configuration and processes, and the two TCP proxies (round
robin in front of the replicas, a cuttable one in front of PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy import insert, select

from adapters.slack.oauth import SqlInstallationStore, TokenCipher
from benchmarks.standup_fanout import QUESTIONS, ZONES
from storage import migrate
from storage.db import Database
from storage.models import Channel, Member, Standup, StandupParticipant, Workspace
from tests.fakes.slack.server import FakeSlack
from tests.fakes.tcp_proxy import TcpProxy

CLIENT_ID = "1111.2222"
SIGNING_SECRET = "scale-day-signing-secret"
ENCRYPTION_KEY = "p1Q4SW0rSwK2hOgoUzdz8q4yYyc3eMugZ4mDtvZ7LQs="
STANDUP_TIME = "09:00"
REMINDER_MINUTES = 30
WINDOW_MINUTES = 60

# Slack's documented limits, per workspace (team) and method, as (rate a second, burst):
# chat.postMessage 1 a second per channel and a workspace-wide ceiling; Tier 3 (50+ a minute)
# for chat.update and conversations.*; Tier 4 (100+ a minute) for views.*, users.info and
# chat.postEphemeral; Tier 2 (20+ a minute) for users.list.
TIER_2 = (20 / 60, 3)
TIER_3 = (50 / 60, 3)
TIER_4 = (100 / 60, 5)
METHOD_RATES = {
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    "conversations.open": TIER_3,
    "conversations.info": TIER_3,
    "conversations.members": TIER_3,
    "views.open": TIER_4,
    "views.update": TIER_4,
    "users.info": TIER_4,
    "users.list": TIER_2,
}
CHANNEL_RATE = (1.0, 1)
TEAM_POST_RATE = (5.0, 10)


def team_of(ws: int) -> str:
    return f"T{ws:03d}"


def user_of(ws: int, n: int) -> str:
    return f"U{ws:03d}{n:03d}"


def channel_of(ws: int) -> str:
    return f"C{ws:03d}STANDUP"


def token_of(ws: int) -> str:
    return f"xoxb-scale-{ws:03d}"


def zone_of(n: int) -> str:
    return ZONES[n % len(ZONES)]


def configure_fake(fake: FakeSlack, workspaces: int, members: int) -> None:
    fake.method_rates.update(METHOD_RATES)
    fake.channel_rate = CHANNEL_RATE
    fake.team_post_rate = TEAM_POST_RATE
    for ws in range(workspaces):
        fake.tokens[token_of(ws)] = team_of(ws)
        users = [user_of(ws, n) for n in range(members)]
        for n, user in enumerate(users):
            fake.add_user(user, f"member-{user.lower()}", tz=zone_of(n), team=team_of(ws))
            fake.dm_of(user)
        fake.add_channel(channel_of(ws), "standup", users)


async def seed(url: str, workspaces: int, members: int) -> None:
    """A migrated database with every workspace installed (the OAuth store's rows, as an install
    leaves them), its members in 20 zones and one member-local standup of everyone."""
    db = Database(url)
    try:
        await migrate.upgrade(db.engine)
        now = datetime.now(UTC)
        store = SqlInstallationStore(db, TokenCipher(ENCRYPTION_KEY), CLIENT_ID)
        for ws in range(workspaces):
            await store.async_save(
                Installation(
                    app_id="A1",
                    team_id=team_of(ws),
                    team_name=f"Team {ws}",
                    bot_token=token_of(ws),
                    bot_id=f"B{ws:03d}",
                    bot_user_id="UBOT",
                    bot_scopes=["chat:write", "commands", "im:write", "users:read"],
                    user_id=user_of(ws, 0),
                    installed_at=now.timestamp(),
                )
            )
            async with db.transaction() as session:
                workspace = Workspace(
                    platform="slack", external_id=team_of(ws), name=f"Team {ws}", created_at=now
                )
                session.add(workspace)
                await session.flush()
                channel = Channel(
                    workspace_id=workspace.id,
                    external_id=channel_of(ws),
                    name="standup",
                    created_at=now,
                )
                session.add(channel)
                await session.flush()
                rows = [
                    {
                        "workspace_id": workspace.id,
                        "platform_user_id": user_of(ws, n),
                        "display_name": f"member-{user_of(ws, n).lower()}",
                        "timezone": zone_of(n),
                        "timezone_set_by_member": True,
                        "is_platform_admin": n == 0,
                        "dm_channel_id": f"D{user_of(ws, n)}",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(members)
                ]
                await session.execute(insert(Member), rows)
                ids = list(
                    await session.scalars(
                        select(Member.id)
                        .where(Member.workspace_id == workspace.id)
                        .order_by(Member.platform_user_id)
                    )
                )
                # One standup per zone (a team per zone, in its own time zone): each member's
                # prompt at 09:00 in their zone. A member-local standup of everyone would do
                # the same with one schedule per member (docs/operations.md, "A day at scale").
                by_zone: dict[str, list[int]] = {}
                for n, member_id in enumerate(ids):
                    by_zone.setdefault(zone_of(n), []).append(member_id)
                for zone, zone_ids in by_zone.items():
                    standup = Standup(
                        workspace_id=workspace.id,
                        name=f"daily {zone}",
                        report_channel_id=channel.id,
                        questions=[dict(q) for q in QUESTIONS],
                        days=[1, 2, 3, 4, 5, 6, 7],
                        every_weeks=1,
                        anchor_date=date(2026, 1, 5),
                        time_of_day=STANDUP_TIME,
                        team_timezone=zone,
                        reminder_minutes=REMINDER_MINUTES,
                        window_minutes=WINDOW_MINUTES,
                        report_mode="each",
                        created_at=now,
                        updated_at=now,
                    )
                    session.add(standup)
                    await session.flush()
                    await session.execute(
                        insert(StandupParticipant),
                        [{"standup_id": standup.id, "member_id": m} for m in zone_ids],
                    )
    finally:
        await db.dispose()


# -- the replicas ----------------------------------------------------------------------------


def config_text(
    name: str, db_url: str, api_url: str, port: int, clock_file: Path, reconcile: float
) -> str:
    return f"""[bot]
platform = "slack"
log_level = "WARNING"
instance_name = "{name}"
clock_offset_file = "{clock_file}"

[database]
url = "{db_url}"
auto_migrate = false

[scheduler]
reconcile_interval_seconds = {reconcile}

[web]
host = "127.0.0.1"
port = {port}

[slack]
mode = "http"
api_base_url = "{api_url}"
client_id = "{CLIENT_ID}"
client_secret = "scale-day-client-secret"
signing_secret = "{SIGNING_SECRET}"
token_encryption_key = "{ENCRYPTION_KEY}"
http_host = "127.0.0.1"
http_port = {port}
"""


@dataclass
class Replica:
    name: str
    config: Path
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None
    # Peak resident memory (VmHWM) of each process this replica has been, in MiB.
    peaks: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)  # samples of the current process, MiB

    async def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("syncup")),
                "--config",
                str(self.config),
                "run",
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
            )
        self.rss = []

    def _status(self, key: str) -> float | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        try:
            text = Path(f"/proc/{self.proc.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return None

    def sample(self) -> None:
        rss = self._status("VmRSS")
        if rss is not None:
            self.rss.append(rss)

    def record_peak(self) -> None:
        peak = self._status("VmHWM")
        if peak is not None:
            self.peaks.append(peak)

    async def kill(self) -> None:
        """kill -9: no stop, no lease handed back."""
        assert self.proc is not None
        self.record_peak()
        os.kill(self.proc.pid, signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        self.record_peak()
        self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(30):
                await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()


async def wait_ready(port: int, proc: asyncio.subprocess.Process, within: float = 60) -> None:
    async with asyncio.timeout(within):
        while True:
            if proc.returncode is not None:
                raise RuntimeError(f"replica on port {port} exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                status = await reader.readline()
                writer.close()
                if b" 200 " in status:
                    return
            await asyncio.sleep(0.2)


# -- proxies -----------------------------------------------------------------------------------


class RoundRobinProxy:
    """Slack's side of a load balancer: each connection goes to the next replica; a replica that
    refuses the connection (killed, restarting) is skipped for the next one."""

    def __init__(self, backends: list[int]) -> None:
        self.backends = backends
        self._turn = itertools.count()
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = None
        for _ in range(len(self.backends)):
            port = self.backends[next(self._turn) % len(self.backends)]
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                continue
        if upstream is None:
            writer.transport.abort()
            return
        up_reader, up_writer = upstream
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(Exception):
            dst.close()


async def pg_proxy(host: str, port: int) -> TcpProxy:
    """What the replicas see as PostgreSQL: a proxy that can be cut without stopping the
    machine's shared server (tests/fakes/tcp_proxy.py)."""
    proxy = TcpProxy(host, port)
    await proxy.up()
    return proxy
