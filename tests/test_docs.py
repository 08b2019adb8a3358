"""The console sessions in docs/ are scripts: their output must be exactly what the pages show."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

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
]


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
    lines = block(DOCS / page, script).splitlines()
    monkeypatch.chdir(tmp_path)  # chart pictures go to ./syncup-charts, as by default
    result = await run_console(tmp_path, lines, start=start, charts_dir="./syncup-charts")
    assert result.code == 0
    assert result.output == block(DOCS / page, output)
