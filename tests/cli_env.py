"""The environment of a test that runs the operator's CLI: none of the machine's SYNCUP_
settings, and a SQLite database of the test's own."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def without_syncup_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SYNCUP_"):
            monkeypatch.delenv(name)


def cli_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file: str) -> str:
    """Run from ``tmp_path`` with ``SYNCUP_DATABASE_URL`` naming ``tmp_path / file``; the URL."""
    without_syncup_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    url = f"sqlite+aiosqlite:///{tmp_path / file}"
    monkeypatch.setenv("SYNCUP_DATABASE_URL", url)
    return url
