"""Oversized unsigned requests against Slack's HTTP mode: what they cost the process.

syncup runs in HTTP mode with OAuth installs against the fake Slack, its log set up as `syncup
run` does (INFO, to a buffer). CONCURRENT clients at once each declare and send a SIZE-megabyte
unsigned form body to ``POST /slack/events``. It prints the process's resident memory before and
after, how much the log grew, and what the clients got back (413, or "reset" when the server
answered and closed while they were still sending). Before the body limit, three 50 MB bodies
took the memory from 108 MB to 258 MB and grew the log by 150 MB.

Run from the repository root::

    .venv/bin/python benchmarks/http_burst.py [--size-mb 50 --concurrent 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.fernet import Fernet

from bot.config import BotSection
from bot.logs import setup_logging
from storage import migrate
from storage.db import Database
from tests.fakes.slack.harness import SlackWorld, settings_for, team_slack

CHUNK = b"A" * 65536


def rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


async def send(port: int, size: int) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /slack/events HTTP/1.1\r\nHost: syncup\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    )
    writer.write(head.encode())
    try:
        sent = 0
        while sent < size:
            writer.write(CHUNK)
            await writer.drain()
            sent += len(CHUNK)
        answer = await asyncio.wait_for(reader.read(), 120)
        return answer.split(b"\r\n", 1)[0].decode(errors="replace") or "closed"
    except ConnectionError:
        return "reset"
    finally:
        writer.close()


async def main(size_mb: int, concurrent: int) -> None:
    folder = tempfile.mkdtemp()
    url = f"sqlite+aiosqlite:///{folder}/syncup.db"
    db = Database(url)
    await migrate.upgrade(db.engine)
    await db.dispose()
    log = io.StringIO()
    async with team_slack() as fake:
        settings = settings_for(
            fake,
            url,
            "http",
            bot_token=None,
            app_token=None,
            client_id="111.222",
            client_secret="client-secret",
            token_encryption_key=Fernet.generate_key().decode(),
        )
        settings.bot = BotSection(platform="slack", log_level="INFO")
        setup_logging(settings, log)
        world = SlackWorld(fake, settings, datetime(2026, 3, 9, 7, tzinfo=UTC))
        await world.start()
        logged = len(log.getvalue())
        before = rss_mb()
        size = size_mb * 1024 * 1024
        answers = await asyncio.gather(
            *(send(world.adapter.http_port, size) for _ in range(concurrent))
        )
        after = rss_mb()
        await world.stop()
    grown = len(log.getvalue()) - logged
    print(f"{concurrent} concurrent unsigned {size_mb} MB bodies")
    print(f"  resident memory: {before} MB before, {after} MB after")
    print(f"  log grew by {grown:,} bytes")
    print(f"  answers: {', '.join(answers)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--concurrent", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.size_mb, args.concurrent))
