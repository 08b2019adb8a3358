"""The neutral model as Block Kit: escaping, mentions, splitting at Slack's limits, modals, and
the app manifest. Every payload is checked by the fake Slack's own Block Kit rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.slack import render
from adapters.slack.app import SlackAdapter
from adapters.slack.manifest import BOT_SCOPES, manifest
from bot.chat import (
    Actions,
    Bold,
    Button,
    ChannelMention,
    Choice,
    Code,
    Context,
    Fields,
    Form,
    Header,
    Italic,
    Link,
    Select,
    SelectField,
    TextField,
    UserMention,
    message,
    text,
)
from bot.cli import cli
from bot.config import ConfigError, Settings, SlackSection
from tests.fakes.slack import blockkit
from tests.fakes.slack.payloads import fill


def checked(msg: render.SlackMessage) -> render.SlackMessage:
    assert blockkit.check_message({"text": msg.text, "blocks": msg.blocks}) == []
    return msg


def test_user_text_is_escaped_and_inert() -> None:
    typed = "<!channel> <!here|here> <@U123> & <https://evil|click> @everyone"
    [out] = render.messages(message(text(typed)))
    checked(out)
    section = out.blocks[0]["text"]
    assert section["verbatim"] is True
    assert "<" not in section["text"] and ">" not in section["text"]
    assert "&lt;!channel&gt;" in section["text"] and "&amp;" in section["text"]
    assert blockkit.pings({"text": out.text, "blocks": out.blocks}) == []


def test_meant_mentions_links_and_marks_render() -> None:
    msg = message(
        text(
            UserMention("U42", "bob"),
            " ",
            ChannelMention("C0TEAM", "team"),
            " ",
            Bold("done"),
            " ",
            Italic(" late "),
            " ",
            Code("a`b"),
            " ",
            Link("https://example.com/?a=1&b=2", "the <doc>"),
            " ",
            Link("javascript:alert(1)", "x"),
            " ",
            UserMention("not an id", "carol"),
        )
    )
    [out] = render.messages(msg)
    shown = out.blocks[0]["text"]["text"]
    assert shown.startswith("<@U42> <#C0TEAM> *done*  _late_  `aˋb` ")
    assert "<https://example.com/?a=1&b=2|the &lt;doc&gt;>" in shown
    assert "javascript" in shown and "<javascript" not in shown
    assert shown.endswith("@carol")
    assert blockkit.pings({"blocks": out.blocks}) == ["U42"]


def test_long_sections_split_without_losing_a_character() -> None:
    body = "".join(f"{n} <tag> & " for n in range(1500))
    parts = render.messages(message(text(body)))
    assert len(parts) >= 1
    sections = [b for p in parts for b in checked(p).blocks]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections)
    joined = "".join(b["text"]["text"] for b in sections)
    assert joined.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == body


def test_many_short_sections_are_joined_to_fit_one_message() -> None:
    msg = message(*(text(f"line {n}") for n in range(120)), summary="Report")
    [part] = [checked(p) for p in render.messages(msg)]
    assert len(part.blocks) == 1
    assert part.blocks[0]["text"]["text"] == "\n".join(f"line {n}" for n in range(120))


def test_many_blocks_become_several_messages() -> None:
    items = []
    for n in range(60):
        items += [Header(f"Person {n}"), text(f"answer {n} " + "a" * 200)]
    parts = [checked(p) for p in render.messages(message(*items, summary="Report"))]
    assert [len(p.blocks) for p in parts] == [50, 50, 20]
    assert parts[1].text == "Report (2/3)"
    shown = [b for p in parts for b in p.blocks]
    assert [b["text"]["text"] for b in shown[:2]] == ["Person 0", "answer 0 " + "a" * 200]


def test_fields_context_header_and_actions_respect_limits() -> None:
    items = [(f"k{n}", text("v" * 50)) for n in range(23)]
    items.append(("big", text("x" * 2500)))
    elements: list[Button | Select] = [
        Button(f"Button {n} " + "b" * 80, f"act:{n}", str(n)) for n in range(30)
    ]
    elements.append(Select("pick", tuple(Choice(f"o{n}", f"v{n}") for n in range(5)), "Pick"))
    msg = message(
        Header("H" * 200), Fields(tuple(items)), Context(text("c" * 7000)), Actions(tuple(elements))
    )
    parts = [checked(p) for p in render.messages(msg)]
    blocks = [b for p in parts for b in p.blocks]
    kinds = [b["type"] for b in blocks]
    assert kinds[0] == "section" and "H" * 150 in blocks[0]["text"]["text"]
    assert kinds.count("actions") == 2
    fields = [b for b in blocks if "fields" in b]
    assert [len(b["fields"]) for b in fields] == [10, 10, 3]
    assert any("x" * 2500 in b.get("text", {}).get("text", "") for b in blocks)


def test_forms_become_modals_and_submissions_come_back() -> None:
    form = Form(
        "standup-answer",
        "Daily standup for the platform team",  # longer than a modal title may be
        (
            TextField("q0", "What did you do?", multiline=True, initial="stuff"),
            TextField("q1", "Notes", required=False, placeholder="p" * 200, max_length=5000),
            SelectField("mood", "Mood", (Choice("Good", "good"), Choice("Bad", "bad"))),
            SelectField(
                "opts",
                "Options",
                (Choice("A", "a"), Choice("B", "b")),
                required=False,
                multiple=True,
                initial=("b",),
            ),
        ),
        state="17",
    )
    view = render.modal(form, "CTEAM")
    assert blockkit.check_view(view) == []
    assert view["title"]["text"] == "Daily standup for the p…"
    assert view["blocks"][0]["type"] == "header"  # the full title, shown in the modal
    submitted = fill(view, {"q1": "x", "mood": "good"})
    values = render.submitted_values(submitted)
    assert values == {"q0": "stuff", "q1": "x", "mood": "good", "opts": ["b"]}
    assert render.decode_metadata(view["private_metadata"]) == ("17", "CTEAM")
    errors = render.form_errors(view, {"mood": "Pick one", "general": "Something else"})
    assert errors == {"mood": "Pick one", "q0": "Something else"}


def test_an_impossible_form_is_refused_not_cut() -> None:
    many = tuple(TextField(f"f{n}", f"F{n}") for n in range(101))
    with pytest.raises(render.RenderError):
        render.modal(Form("x", "X", many))


# -- manifest and configuration ---------------------------------------------------------------


def test_the_manifest_lists_commands_scopes_events_and_urls() -> None:
    config = SlackSection(commands={"standup": "/standup", "syncup": "/sync"})
    socket = manifest(config)
    assert socket["settings"]["socket_mode_enabled"] is True
    assert [c["command"] for c in socket["features"]["slash_commands"]] == ["/standup", "/sync"]
    assert set(BOT_SCOPES) <= set(socket["oauth_config"]["scopes"]["bot"])
    assert "message.im" in socket["settings"]["event_subscriptions"]["bot_events"]
    http = manifest(config, http_url="https://syncup.example.com/")
    assert http["settings"]["socket_mode_enabled"] is False
    url = "https://syncup.example.com/slack/events"
    assert http["settings"]["event_subscriptions"]["request_url"] == url
    assert http["settings"]["interactivity"]["request_url"] == url
    assert all(c["url"] == url for c in http["features"]["slash_commands"])
    assert http["oauth_config"]["redirect_urls"] == [
        "https://syncup.example.com/slack/oauth_redirect"
    ]


def test_syncup_slack_manifest_prints_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNCUP_CONFIG", raising=False)
    result = CliRunner().invoke(cli, ["slack", "manifest", "--http-url", "https://x.example"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    commands = [c["command"] for c in data["features"]["slash_commands"]]
    # Only commands whose feature exists.
    assert commands == [
        "/standup",
        "/poll",
        "/pulse",
        "/blocker",
        "/raci",
        "/kudos",
        "/syncup",
        "/milestone",
        "/digest",
    ]
    bad = CliRunner().invoke(cli, ["slack", "manifest", "--http-url", "x.example"])
    assert bad.exit_code != 0 and "full URL" in bad.output


@pytest.mark.parametrize(
    ("slack", "problem"),
    [
        ({}, "bot_token"),
        ({"bot_token": "xoxb-1"}, "app_token"),
        ({"bot_token": "xoxb-1", "mode": "http"}, "signing_secret"),
        ({"client_id": "1.2", "mode": "http", "signing_secret": "s"}, "client_secret"),
        (
            {
                "client_id": "1.2",
                "client_secret": "c",
                "token_encryption_key": "A" * 43 + "=",  # a well-formed Fernet key
                "signing_secret": "s",
                "app_token": "xapp-1",
            },
            "http",
        ),
    ],
)
def test_incomplete_slack_settings_say_what_to_set(slack: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        SlackAdapter(Settings(slack=SlackSection(**slack)))
    assert problem in str(info.value)


def test_the_composition_root_loads_the_slack_adapter() -> None:
    from bot.app import load_adapter
    from bot.port import PlatformDirectory, PlatformPort

    settings = Settings(slack=SlackSection(bot_token="xoxb-1", app_token="xapp-1"))
    assert settings.platform() == "slack"
    adapter = load_adapter(settings)
    assert isinstance(adapter, SlackAdapter)
    assert isinstance(adapter.port, PlatformPort) and isinstance(adapter.port, PlatformDirectory)
    assert adapter.port.channel_rate_limit() is not None
    assert adapter.clock() is None


def test_selects_and_stable_event_ids() -> None:
    from adapters.slack import events
    from bot.events import Actor

    who = Actor("U1", "ann")
    body = {
        "type": "block_actions",
        "team": {"id": "T1", "domain": "acme"},
        "user": {"id": "U1"},
        "trigger_id": "trig-1",
        "container": {"channel_id": "C1", "message_ts": "1.2"},
    }
    one = {"action_id": "pick", "selected_option": {"value": "b"}, "action_ts": "9"}
    many = {"action_id": "tags", "selected_options": [{"value": "x"}, {"value": "y"}]}
    picked = events.action_event(body, one, who)
    assert (picked.value, picked.values, picked.message_id) == ("b", ("b",), "1.2")
    assert picked.origin.event_id == "action:trig-1"
    tagged = events.action_event(body, many, who)
    assert tagged.values == ("x", "y")
    debounce = events.ClickDebouncer(window=2.0, monotonic=iter([0.0, 0.5, 3.0]).__next__)
    assert debounce.first(picked) and not debounce.first(picked) and debounce.first(picked)
    retried = {"team_id": "T1", "event_id": "Ev9", "event": {"channel": "DU1", "text": "hi"}}
    assert events.dm_event(retried, who).origin.event_id == "event:Ev9"
    assert not events.is_member_dm({"type": "message", "channel_type": "im", "subtype": "x"})
    assert events.is_member_dm({"type": "message", "channel_type": "im", "user": "U1"})
