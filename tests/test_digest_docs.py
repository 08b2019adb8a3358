"""docs/digest.md's console session is a script: its output must be exactly what the page
shows (the check of tests/test_docs.py, on this page)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_docs import test_console_session_output_matches_the_page as check_page


async def test_the_digest_page_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    await check_page(tmp_path, monkeypatch, "digest.md", "digest.txt", "output", "2026-03-09 08:00")
