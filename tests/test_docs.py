"""The console sessions in docs/ are scripts: their output must be exactly what the pages show.

A session may send a webhook from "another terminal": a script line ``$ python3 FILE`` runs the
page's ```` ```python FILE ```` block (written to the session's folder) once the lines before it
have been handled, with ``URL`` and ``SECRET`` in its environment taken from the last inbound
hook the session added (``/milestone hook add`` prints both). Its output and the posts it causes
are part of the transcript. The hook's URL token, secret and port are random in a test; the
transcript shows them as the fixed values in :data:`SHOWN` (port 8080 is the console's default).
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from adapters.console.adapter import ConsoleAdapter
from bot.app import App
from tests.test_console import run_console

DOCS = Path(__file__).resolve().parents[1] / "docs"
# (page, script block, output block, the demo clock's start)
SESSIONS = [
    ("console-tour.md", "tour.txt", "output", "2026-03-09 08:00"),
    ("standup-day.md", "standup-day.txt", "output", "2026-03-09 08:00"),
    ("blockers.md", "blockers.txt", "output", "2026-03-09 08:00"),
    ("blockers.md", "blockers-weekend.txt", "weekend-output", "2026-03-13 08:00"),  # a Friday
    ("raci.md", "raci.txt", "output", "2026-03-09 08:00"),
    ("kudos.md", "kudos.txt", "output", "2026-03-09 08:00"),
    ("milestones.md", "milestones.txt", "output", "2026-03-09 08:00"),
    ("automatic-celebrations.md", "automatic-celebrations.txt", "output", "2026-03-09 08:00"),
    ("celebrations.md", "celebrations.txt", "output", "2026-03-09 08:00"),
]
SHELL = "$ "
_URL = re.compile(r"Its URL: (http://127\.0\.0\.1:(\d+)/hooks/\w+/([\w-]+))")
_SECRET = re.compile(r"Its secret, shown only this once: (\S+)")
SHOWN = {"port": "8080", "token": "Uf1-NqSoPgsZiB6OgZcwblSyzwLC36bq"}
SHOWN_SECRET = "8SZhJd8OHJaRyp4X_3vCO66FNEAI4Jn3HRO085k88HU"


def block(page: Path, name: str) -> str:
    match = re.search(rf"```text {re.escape(name)}\n(.*?)```", page.read_text(), re.S)
    assert match is not None, f"no `text {name}` block in {page.name}"
    return match.group(1)


@pytest.mark.parametrize(("page", "script", "output", "start"), SESSIONS)
async def test_console_session_output_matches_the_page(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    script: str,
    output: str,
    start: str,
) -> None:
    script_lines = block(DOCS / page, script).splitlines()
    lines = [line for line in script_lines if not line.startswith(SHELL)]
    monkeypatch.chdir(tmp_path)  # chart pictures go to ./syncup-charts, as by default
    shown: dict[str, str] = {}
    setup = None
    if len(lines) < len(script_lines):
        setup = _shell_steps(DOCS / page, tmp_path, script_lines, shown)
    result = await run_console(
        tmp_path, lines, start=start, charts_dir="./syncup-charts", setup=setup
    )
    assert result.code == 0
    transcript = result.output
    for real, fixed in shown.items():
        transcript = transcript.replace(real, fixed)
    assert transcript == block(DOCS / page, output)


def _shell_steps(
    page: Path, folder: Path, script: list[str], shown: dict[str, str]
) -> Callable[[App, list[Any]], None]:
    """Run the script's ``$`` lines between the console's lines (see the module's docstring)."""
    steps: dict[int, list[str]] = {}  # console line index -> the $ lines before it
    index = 0
    for line in script:
        if line.startswith(SHELL):
            steps.setdefault(index, []).append(line)
        else:
            index += 1

    def setup(app: App, seen: list[Any]) -> None:
        adapter = app.adapter
        assert isinstance(adapter, ConsoleAdapter)
        read: Callable[..., Awaitable[str | None]] = adapter.reader.read
        count = 0

        async def read_after_steps(prompt: str, *, blank: bool) -> str | None:
            nonlocal count
            for line in steps.pop(count, []):
                await _run_step(app, adapter, page, folder, line, shown)
            count += 1
            return await read(prompt, blank=blank)

        adapter.reader.read = read_after_steps  # type: ignore[method-assign]

    return setup


async def _run_step(
    app: App, adapter: ConsoleAdapter, page: Path, folder: Path, line: str, shown: dict[str, str]
) -> None:
    command = line[len(SHELL) :].split()
    assert command[:1] == ["python3"] and len(command) == 2, f"only `$ python3 FILE`: {line}"
    (folder / command[1]).write_text(_code(page, command[1]))
    so_far = adapter.terminal.out.getvalue()  # type: ignore[attr-defined]
    urls, secrets = _URL.findall(so_far), _SECRET.findall(so_far)
    assert urls and secrets, "a $ step needs a /milestone hook add before it"
    url, port, token = urls[-1]
    shown.update({f":{port}/": f":{SHOWN['port']}/", token: SHOWN["token"]})
    shown[secrets[-1]] = SHOWN_SECRET
    env = {**os.environ, "URL": url, "SECRET": secrets[-1]}
    adapter.terminal.say(line)
    process = await asyncio.create_subprocess_exec(
        sys.executable, command[1], cwd=folder, env=env, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await process.communicate()
    assert process.returncode == 0, out
    adapter.terminal.say(*out.decode().splitlines())
    await adapter._settle()


def _code(page: Path, name: str) -> str:
    match = re.search(rf"```python {re.escape(name)}\n(.*?)```", page.read_text(), re.S)
    assert match is not None, f"no `python {name}` block in {page.name}"
    return match.group(1)
