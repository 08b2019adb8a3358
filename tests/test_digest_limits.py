"""A long digest (a pulse of thirty long questions, five long blockers, long names) fits the
platforms' limits as the adapters render it: Slack's 50 blocks and 3,000 characters a section,
Discord's 2,000 characters a message and 10 embeds; the words are split over messages, never cut
(every question is there in full), and each chart goes out with its alt text."""

from __future__ import annotations

from datetime import UTC, date, datetime

from adapters.discord.render import render_message
from adapters.slack.render import messages
from bot.chat import Chart
from bot.features.digest.figures import (
    BlockerFigures,
    Dependency,
    KudosFigures,
    OpenBlocker,
    PulseFigures,
    QuestionTrend,
    Scope,
    Silence,
    StandupFigures,
    TeamFigures,
    Trend,
    weeks_before,
)
from bot.features.digest.render import TEXT_CLIP, digest_message
from bot.features.digest.signals import signals
from storage.digest import SECTIONS

END = datetime(2026, 3, 30, 7, tzinfo=UTC)
LONG = "word " * 60  # 300 characters


def big_team() -> TeamFigures:
    weeks = tuple(weeks_before(END, "Europe/Berlin"))
    members = tuple(f"member {n:04d} with a long display name" for n in range(300))
    days = tuple(date(2026, 3, 23 + n) for n in range(7))
    return TeamFigures(
        scope=Scope(1, "standup", 1, "Platform " + "x" * 70),
        weeks=weeks,
        standups=StandupFigures(
            asked=2100,
            answered=900,
            rate=Trend((0.9, 0.9, 0.8, 0.9, 0.43)),
            asked_by_week=(2100,) * 5,
            answered_by_week=(1900, 1900, 1700, 1900, 900),
            silences=tuple(Silence(n, members[n], None, None) for n in range(5)),
            members=members,
            days=days,
            cells=tuple(
                ("answered", "missed", "off", "", "answered", "answered", "missed") for _ in members
            ),
        ),
        blockers=BlockerFigures(
            opened=Trend((5.0, 6.0, 7.0, 8.0, 20.0)),
            resolved=Trend((5.0,) * 5),
            escalated=Trend((1.0,) * 5),
            open_at_end=Trend((10.0, 10.0, 10.0, 12.0, 14.0)),
            median_hours_to_resolve=30.5,
            oldest=tuple(
                OpenBlocker(n, LONG, "Area " + "y" * 70, "Someone " + "z" * 60, 40)
                for n in range(5)
            ),
            dependencies=tuple(
                Dependency(n, "Area " + "y" * 70, "Other " + "w" * 70, 30, LONG) for n in range(5)
            ),
            pairs_by_week=(frozenset({("a", "b")}),) * 5,
        ),
        pulse=PulseFigures(
            questions=tuple(
                QuestionTrend(
                    f"1:q{n}",
                    f"Question {n}: {LONG}",
                    "scale",
                    Trend((4.0, 4.0, 3.9, 3.8, 3.3)),
                    12,
                )
                for n in range(30)
            ),
            index=Trend((4.0, 4.0, 3.9, 3.8, 3.3)),
            held_back=2,
        ),
        kudos=KudosFigures(
            kudos=Trend((3.0, 4.0, 5.0, 6.0, 7.0)),
            top_values=(("craft", 3), ("care", 2), ("courage", 1)),
            celebrations=2,
            milestones_met=("Beta " + "v" * 100,),
            due_soon=(("GA", date(2026, 4, 3)),),
            overdue=(("Audit", date(2026, 3, 20)),),
        ),
        zone="Europe/Berlin",
    )


def test_a_long_digest_fits_slack_and_discord_without_losing_words() -> None:
    figures = big_team()
    fired = signals(figures)
    assert [s.rule for s in fired] == ["pulse-blockers", "participation", "dependency"]
    message = digest_message(
        figures, SECTIONS, fired, zone="Europe/Berlin", base_url="https://s.example/"
    )
    slack = messages(message)
    assert len(slack) >= 1
    for part in slack:
        assert len(part.blocks) <= 50
        for block in part.blocks:
            text = block.get("text")
            if isinstance(text, dict):
                assert len(text["text"]) <= 3000
    slack_text = "\n".join(str(b) for part in slack for b in part.blocks)
    discord = render_message(message, images=True)
    for payload in discord:
        assert len(payload.get("content", "")) <= 2000
        assert len(payload.get("embeds", [])) <= 10
    discord_text = "\n".join(
        payload.get("content", "") + "".join(str(e) for e in payload.get("embeds", []))
        for payload in discord
    )
    for n in range(30):  # every question is there on both platforms, in full
        assert f"Question {n}: " + LONG.strip() in " ".join(slack_text.split())
        assert f"Question {n}: " + LONG.strip() in " ".join(discord_text.split())
    # A blocker's long text is cut visibly, with an ellipsis (its number leads to the rest).
    clipped = LONG.strip()[: TEXT_CLIP - 1].rstrip() + "\u2026"
    assert f"#4 {clipped} (open 40 days" in slack_text
    assert f"#4 {LONG.strip()}" not in slack_text
    charts = [b for b in message.blocks if isinstance(b, Chart)]
    assert [c.style for c in charts] == ["bar", "heatmap", "line", "multiples", "line"]
    assert all(c.alt for c in charts)
    assert "https://s.example/w/1/standups?standup=1" in slack_text
    assert "https://s.example/w/1/blockers" in slack_text
