"""Charts and multi-selects on the console, through the real App (core, outbox, delivery worker):
a chart is its title, text bars, alt text and the path of its PNG; several numbers choose several
options of a multi-select, up to its limit."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from adapters.console import ConsoleAdapter
from adapters.console.render import ChartFiles, Renderer, chart_file_name, chart_lines
from bot.app import App
from bot.charts import render_png
from bot.chat import (
    Actions,
    Button,
    Chart,
    ChartSeries,
    Choice,
    Response,
    Select,
    message,
    reply,
)
from bot.commands.spec import CommandSpec, SubcommandSpec
from bot.config import ConsoleSection, DatabaseSection, Settings
from bot.core import Context
from bot.events import ActionInvocation

START = "2026-03-09T12:00:00+00:00"
RESULTS = Chart(
    "Pace: this week vs last",
    ("Sustainable", "Too fast"),
    (ChartSeries("This week", (62.0, 38.0)), ChartSeries("Last week", (50.0, None))),
    "Sustainable: 62% this week, 50% last week. Too fast: 38% this week, no answer last week.",
    unit="%",
)
TREND = Chart(
    "eNPS by week",
    ("2 Mar", "9 Mar", "16 Mar"),
    (ChartSeries("eNPS", (-10.0, None, 25.0)),),
    "eNPS went from -10 on 2 March to 25 on 16 March (no poll on 9 March).",
    style="line",
)
TOPICS = Select(
    "probe:topics",
    (Choice("Roadmap", "roadmap"), Choice("Hiring", "hiring"), Choice("On-call", "oncall")),
    "Topics for Friday",
    max_selected=2,
)
PROBE = CommandSpec(
    "probe",
    "Test-only command.",
    (SubcommandSpec("results", "Post poll results."), SubcommandSpec("ask", "Ask for topics.")),
)


def install(app: App, seen: list[ActionInvocation]) -> None:
    async def results(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("team", message("Poll closed.", RESULTS, TREND))
        return None

    async def ask(ctx: Context, args: dict[str, Any]) -> Response:
        await ctx.post("team", message("Pick topics.", Actions((Button("Skip", "probe:skip"),))))
        await ctx.post("team", message("Or these.", Actions((TOPICS,))))
        return None

    async def action(ctx: Context, event: ActionInvocation) -> Response:
        seen.append(event)
        return reply(f"Noted: {', '.join(event.values) or event.value}.")

    app.core.add_command(PROBE, {"results": results, "ask": ask})
    app.core.add_action("probe", action)


async def run(tmp_path: Path, lines: list[str]) -> tuple[str, list[ActionInvocation], Path]:
    charts = tmp_path / "charts"
    settings = Settings.model_construct(
        database=DatabaseSection(url=f"sqlite+aiosqlite:///{tmp_path / 'syncup.db'}"),
        console=ConsoleSection(member="alice", start=START, charts_dir=str(charts)),
    )
    out = io.StringIO()
    app = App(settings, ConsoleAdapter(settings, lines=lines, out=out))
    seen: list[ActionInvocation] = []
    install(app, seen)
    assert await app.run() == 0
    return out.getvalue(), seen, charts


async def test_a_chart_is_text_bars_alt_text_and_a_png_file(tmp_path: Path) -> None:
    output, _, charts = await run(tmp_path, ["/probe results"])
    bar_file = charts / chart_file_name(RESULTS)
    line_file = charts / chart_file_name(TREND)
    assert (
        "#1 → #team:\n"
        "  Poll closed.\n"
        "  Pace: this week vs last\n"
        "  Sustainable  This week  ██████████████████████████████ 62%\n"
        "               Last week  ████████████████████████▏ 50%\n"
        "  Too fast     This week  ██████████████████▍ 38%\n"
        "               Last week  n/a\n"
        f"  {RESULTS.alt}\n"
        f"  [chart picture: {bar_file}]\n"
        "  eNPS by week\n"
        "  2 Mar   ░░░░░░░░░░░░ -10\n"
        "  9 Mar   n/a\n"
        "  16 Mar  ██████████████████████████████ 25\n"
        f"  {TREND.alt}\n"
        f"  [chart picture: {line_file}]\n"
    ) in output
    for path, chart in ((bar_file, RESULTS), (line_file, TREND)):
        image = Image.open(path)
        image.verify()
        assert Image.open(path).size[0] == 800
        assert path.read_bytes() == render_png(chart)
    assert sorted(p.name for p in charts.iterdir()) == sorted([bar_file.name, line_file.name])


async def test_several_numbers_choose_several_options_of_a_multi_select(tmp_path: Path) -> None:
    output, seen, _ = await run(
        tmp_path, ["/probe ask", "4 2", "2", "2 3 4", "1 2", "/press 3, 4", "9 2", "1 5"]
    )
    assert (
        "#1 → #team:\n"
        "  Pick topics.\n"
        "  [1] Skip\n"
        "#2 → #team:\n"
        "  Or these.\n"
        "  Topics for Friday (up to 2: numbers separated by spaces): "
        "[2] Roadmap  [3] Hiring  [4] On-call\n"
    ) in output
    assert "alice> 4 2\n(only you can see this)\n  Noted: roadmap, oncall.\n" in output
    assert "alice> 2\n(only you can see this)\n  Noted: roadmap.\n" in output
    assert "alice> 2 3 4\nChoose at most 2 of these options (3 given).\n" in output
    assert "alice> 1 2\nSeveral numbers choose options of one multi-select menu together" in output
    assert "alice> /press 3, 4\n(only you can see this)\n  Noted: hiring, oncall.\n" in output
    assert "alice> 9 2\nThere is no button [9] to press.\n" in output
    assert "alice> 1 5\nThere is no button [5] to press.\n" in output
    assert [(e.action_id, e.value, e.values) for e in seen] == [
        ("probe:topics", "roadmap", ("roadmap", "oncall")),
        ("probe:topics", "roadmap", ("roadmap",)),
        ("probe:topics", "hiring", ("hiring", "oncall")),
    ]
    assert all((e.message_channel_id, e.message_id) == ("team", "m2") for e in seen)


def test_text_bars_for_no_data_and_a_folder_that_cannot_be_written(tmp_path: Path) -> None:
    empty = Chart("Nothing yet", ("a", "b"), (ChartSeries("s", (None, None)),), "No answers.")
    assert chart_lines(empty) == ["No data"]
    odd = Chart("t", ("a", "b"), (ChartSeries("s", (float("nan"), 2)),), "")
    assert chart_lines(odd) == ["a  n/a", "b  " + "█" * 30 + " 2"]
    long_label = Chart("t", ("A label far too long for the column",), (ChartSeries("s", (3,)),), "")
    assert chart_lines(long_label) == ["A label far too long fo…  " + "█" * 30 + " 3"]
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    lines = Renderer(charts=ChartFiles(blocked / "charts")).chart(empty)
    assert lines[:3] == ["Nothing yet", "No data", "No answers."]
    assert lines[3].startswith("[chart picture not saved: ")
    assert Renderer().chart(empty) == ["Nothing yet", "No data", "No answers."]


def test_text_bars_follow_the_scale_and_show_counts() -> None:
    # 3.5 out of 5 is 2.5 / 4 of the bar, not all of it; a 1 is no bar but its value.
    scores = Chart(
        "Pulse scores (1-5)",
        ("Pace", "Tools", "Clarity"),
        (ChartSeries("This week", (3.5, 5.0, 1.0), (12, 12, 11)),),
        "",
        scale=(1, 5),
    )
    assert chart_lines(scores) == [
        "Pace     " + "█" * 18 + "▊ 3.5 (12)",
        "Tools    " + "█" * 30 + " 5 (12)",
        "Clarity  1 (11)",
    ]
    alone = Chart("t", ("Pace",), (ChartSeries("s", (3.5,)),), "", scale=(1, 5))
    assert chart_lines(alone) == ["Pace  " + "█" * 18 + "▊ 3.5"]
    enps = Chart(
        "eNPS", ("A", "B"), (ChartSeries("s", (0.0, -40.0), (12, 10)),), "", scale=(-100, 100)
    )
    assert chart_lines(enps) == ["A  0 (12)", "B  " + "░" * 12 + " -40 (10)"]
