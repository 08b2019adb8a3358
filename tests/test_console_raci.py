"""/raci on the console with the real App: the demo workspace's user groups (@backend, @ml),
a form field in error asked again with the reason, the matrix too wide for a message saved as
a PNG and shown as a line in the DM, and a delete kept with the "Keep it" button. The whole
documented session (docs/raci.md) is checked by tests/test_docs.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from tests.test_console import run_console


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # chart pictures land here, never in the checkout


async def test_groups_the_form_the_picture_and_keep(tmp_path: Path) -> None:
    run = await run_console(
        tmp_path,
        [
            "/raci setup",
            "Labeling",
            "@ml @gabriel",
            "@backend",  # a group as Accountable
            "",
            "#team",
            "#random",  # a channel syncup is not in
            "Asia/Tokyo",
            "",
            "10-18",
            "JP",
            "",
            "labeling, annotation",
            "@hiro",  # the two fields in error, asked again
            "#team",
            "/raci who labeling",
            "/raci setup Ops -r @alice @bob @chandra @dana @eve -a @femi",
            "/raci show",
            "/raci delete ops",
            "a2",
            "/raci show ops",
        ],
        charts_dir=str(tmp_path / "charts"),
    )
    assert run.code == 0
    out = run.output
    assert (
        "  ! Accountable is one person, not a group (@backend); name the one who answers for the "
        "area, and make the group Responsible.\n"
    ) in out
    assert "  ! I can't post in #random: invite @syncup to it first" in out
    assert "Created the area Labeling." in out
    who = run.after("alice> /raci who labeling")
    assert "  Responsible (R): @ml (group: dana, femi, hiro), @gabriel\n" in who
    assert "  Accountable (A): @hiro\n" in who
    assert "  Blocker cards in #team · mon-fri 10:00-18:00 Asia/Tokyo · public holidays: JP" in out
    shown = run.after("alice> /raci show\n")
    assert "too wide for a message, so I sent it to you as a picture in a direct message." in shown
    picture = re.search(r"→ DM to @alice:\n.*\n  \[chart: RACI matrix; picture: (\S+)\]", shown)
    assert picture is not None, shown
    with Image.open(picture.group(1)) as image:
        assert image.format == "PNG" and image.size[0] == 800
    assert "Kept the area Ops." in run.after("alice> a2")
    assert "Responsible (R): @alice, @bob, @chandra, @dana, @eve" in run.after("/raci show ops")
