"""The console tour in docs/ is a script: its output must be exactly what the page shows."""

from __future__ import annotations

import re
from pathlib import Path

from tests.test_console import run_console

TOUR = Path(__file__).resolve().parents[1] / "docs" / "console-tour.md"


def block(name: str) -> str:
    match = re.search(rf"```text {name}\n(.*?)```", TOUR.read_text(), re.S)
    assert match is not None, f"no `text {name}` block in {TOUR.name}"
    return match.group(1)


async def test_console_tour_output_matches_the_page(tmp_path: Path) -> None:
    lines = block("tour.txt").splitlines()
    result = await run_console(tmp_path, lines, start="2026-03-09 08:00")
    assert result.code == 0
    assert result.output == block("output")
