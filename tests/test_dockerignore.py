""".dockerignore: the image's build context is what the Dockerfile copies, never the .venv, the
SQLite database or a config with tokens. The rules are applied as Docker applies them: each
pattern against the path and its parent folders, ``**`` for any folders, the last match wins,
``!`` lets back in."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent
# What a developer's checkout holds besides the repository's files.
LOCAL = [
    ".venv/lib/python3.12/site-packages/slack_bolt/__init__.py",
    ".venv/bin/python",
    "syncup.db",
    "syncup.db-wal",
    "syncup.db-shm",
    "syncup.toml",
    "syncup-charts/pace-1a2b.png",
    ".git/HEAD",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.6.0/123",
    "bot/__pycache__/app.cpython-312.pyc",
    "storage/test.db",
    "syncup.egg-info/PKG-INFO",
]


def _regex(pattern: str) -> re.Pattern[str]:
    out, at = "", 0
    while at < len(pattern):
        if pattern.startswith("**/", at):
            out, at = out + "(?:.*/)?", at + 3
        elif pattern.startswith("**", at):
            out, at = out + ".*", at + 2
        elif pattern[at] == "*":
            out, at = out + "[^/]*", at + 1
        elif pattern[at] == "?":
            out, at = out + "[^/]", at + 1
        elif pattern[at] == "[":
            end = pattern.index("]", at)
            out, at = out + pattern[at : end + 1], end + 1
        else:
            out, at = out + re.escape(pattern[at]), at + 1
    return re.compile(out)


def rules() -> list[tuple[bool, re.Pattern[str]]]:
    found = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = str(PurePosixPath(line.lstrip("!").strip("/")))
        found.append((negate, _regex(pattern)))
    return found


def in_context(path: str, compiled: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for negate, pattern in compiled:
        if any(pattern.fullmatch(c) for c in candidates):
            excluded = not negate
    return not excluded


def copied_sources() -> list[str]:
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            sources.extend(p.rstrip("/") for p in line.split()[1:-1] if not p.startswith("--"))
    return sources


def test_the_build_context_is_what_the_dockerfile_copies() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    compiled = rules()
    context = {p for p in [*tracked, *LOCAL] if in_context(p, compiled)}
    assert not {p for p in LOCAL if p in context}, "local files would be sent to the builder"
    sources = copied_sources()
    assert {"pyproject.toml", "bot", "adapters", "storage", "migrations"} <= set(sources)
    for source in sources:  # everything the Dockerfile copies is there
        assert any(p == source or p.startswith(f"{source}/") for p in context), source
    for path in context:  # and nothing else
        assert any(path == s or path.startswith(f"{s}/") for s in sources), path


def test_the_matcher_follows_dockers_rules() -> None:
    compiled = [(False, _regex("*")), (True, _regex("bot")), (False, _regex("**/__pycache__"))]
    assert in_context("bot/app.py", compiled)
    assert not in_context("bot/__pycache__/app.pyc", compiled)
    assert not in_context(".venv/bin/python", compiled)
    assert not in_context("syncup.db", compiled)
