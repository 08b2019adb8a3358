"""[bot] clock_offset_file: every process's clock follows the offset a benchmark writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.app import configured_clock
from bot.clock import OffsetFileClock, SystemClock
from bot.config import BotSection, Settings


def test_the_clock_follows_the_file_and_never_goes_back(tmp_path: Path) -> None:
    path = tmp_path / "offset"
    clock = OffsetFileClock(path, recheck=0.0)
    before = datetime.now(UTC)
    assert abs(clock.now() - before) < timedelta(minutes=1)  # no file: real time

    path.write_text("7200")
    assert clock.now() - datetime.now(UTC) > timedelta(hours=1, minutes=59)

    path.write_text("60")  # backwards: refused, the clock stays ahead
    assert clock.now() - datetime.now(UTC) > timedelta(hours=1, minutes=59)

    path.write_text("not a number")  # unreadable: the offset stays
    assert clock.now() - datetime.now(UTC) > timedelta(hours=1, minutes=59)

    path.write_text("90000")
    assert clock.now() - datetime.now(UTC) > timedelta(hours=24, minutes=59)


def test_the_setting_picks_the_clock(tmp_path: Path) -> None:
    assert isinstance(configured_clock(Settings()), SystemClock)
    settings = Settings(bot=BotSection(clock_offset_file=str(tmp_path / "offset")))
    clock = configured_clock(settings)
    assert isinstance(clock, OffsetFileClock)
    assert clock.path == tmp_path / "offset"
