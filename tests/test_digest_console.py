"""``/digest`` on the console, end to end through the real App on SQLite: a standup, answers,
a blocker and kudos; a digest set up in one line (after a mistake that saves nothing); the
preview, privately; then the clock runs to Monday 09:00 and the digest goes out once to the
channel and once to the leader, with its pictures drawn."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tests.test_console import outbox_rows, run_console

START = "2026-03-09 10:00"  # a Monday, Europe/Berlin (alice's zone)
LINES = [
    "/standup setup", "Core", "#team", "#team", "", "mon", "", "", "", "", "", "", "", "", "",
    "/standup run Core",
    "Shipped the login page", "Payments API", "Waiting on the security review",
    "/as bob", "Fixed flaky tests", "Release notes", "none",
    "/as alice",
    "/blocker add Staging database is down",
    "/kudos @bob for the flaky-test hunt #craft",
    '/digest setup "Leadership" --teams Core, Payments --channel #team',
    '/digest setup "Leadership" --teams Core --channel #team --day mon --time 09:00 '
    "--timezone Europe/Berlin --leaders @alice",
    "/clock +1d",
    "/digest preview Leadership",
    "/clock 2026-03-16 09:00",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


async def test_a_digest_from_setup_to_monday_on_the_console(tmp_path: Path) -> None:
    run = await run_console(tmp_path, LINES, start=START)
    assert run.code == 0
    mistake = run.after('alice> /digest setup "Leadership" --teams Core, Payments')
    assert 'Teams: No standup or RACI area named "Payments".' in mistake.split("alice>")[1]
    created = run.after('alice> /digest setup "Leadership" --teams Core --channel')
    assert (
        "Created the digest Leadership: Core (standup); to #team every Mon at 09:00 "
        "Europe/Berlin; sections: standups, blockers, pulse, kudos, signals; also by DM to "
        "@alice. Next: Mon 16 Mar 2026 09:00 (Europe/Berlin)." in created
    )
    preview = run.after("alice> /digest preview Leadership").split("alice> /clock")[0]
    assert "(only you can see this)" in preview
    assert "Standups: participation 25%, 2 of 8 answered" in preview
    assert "Blockers: 2 opened" in preview and "#2 Staging database is down" in preview
    assert "Kudos and celebrations: 1 kudos" in preview and "Top values: craft (1)" in preview
    monday = run.after("alice> /clock 2026-03-16 09:00")
    posted = [line for line in monday.splitlines() if line.startswith("#") and "→" in line]
    digest_posts = [
        n for n, line in enumerate(monday.splitlines())
        if line.strip() == "Weekly digest: Core"
    ]  # fmt: skip
    assert len(digest_posts) == 2, monday  # the channel and alice's DM
    assert any("→ #team" in line for line in posted)
    assert any("→ DM to @alice" in line for line in posted)
    rows = [r for r in await outbox_rows(run.url) if r.idempotency_key.startswith("digest:")]
    assert sorted(r.idempotency_key for r in rows) == [
        "digest:1@2026-03-16:standup:1:dm:1",
        "digest:1@2026-03-16:standup:1:post",
    ]
    pictures = sorted((tmp_path / "charts").glob("weekly-digest-core-*.png"))
    assert pictures
    with Image.open(pictures[-1]) as image:
        assert image.size[0] == 800
