"""``/raci policy AREA`` and ``/raci policy default``: show, edit in a form, refuse bad input
with the field to fix and save nothing; open blockers are re-timed by a saved policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.chat import FormErrors, OpenForm, Reply
from bot.core import Core
from bot.features import raci
from bot.features.blockers import policy_commands
from storage.db import Database
from storage.raci import BlockerSettings, RaciArea
from tests.blocker_world import ADMIN, ALICE, World, command, make_world, press, said, submit


@pytest.fixture
async def world(database: Database) -> World:
    made = await make_world(database)
    raci.register(made.core)
    policy_commands.register(made.core)
    return made


async def area_policy(world: World) -> dict | None:
    async with world.db.transaction() as session:
        area = await session.get(RaciArea, world.areas["data pipeline"])
        assert area is not None
        return area.policy


def policy_form(world: World, levels: str, repeat: str = "0", reack: str = "1d", state: str = ""):
    values = {"levels": levels, "repeat": repeat, "reack": reack}
    return submit("raci-policy", ADMIN, values, state or str(world.areas["data pipeline"]))


async def test_extend_command_adds_policy_to_raci(world: World) -> None:
    names = [sub.name for sub in world.core.specs["raci"].subcommands]
    assert names[-1] == "policy" and "setup" in names
    with pytest.raises(ValueError, match="already exist"):
        policy_commands.register(world.core)
    other = Core(world.db, world.clock)
    with pytest.raises(KeyError):
        policy_commands.register(other)  # /raci must be registered first


async def test_show_the_default_then_edit_in_the_form(world: World) -> None:
    shown = await world.core.handle(command("/raci policy data pipeline", ALICE))
    text = said(shown)
    assert "Escalation policy: data pipeline" in text
    assert "1. after 4 business hours: the area's Responsible" in text
    assert "Uses the built-in default. Business time: Mon-Fri 09:00-17:00 Europe/Berlin" in text
    assert isinstance(shown, Reply)
    assert not any(getattr(b, "kind", "") == "actions" for b in shown.message.blocks)

    answer = await world.core.handle(command("/raci policy data pipeline", ADMIN))
    assert isinstance(answer, Reply)
    [button] = answer.message.blocks[-1].elements
    assert button.action_id == f"raci-policy:edit:{world.areas['data pipeline']}"
    refused = await world.core.handle(press(button.action_id, ALICE))
    assert "Only team leads and admins" in said(refused)
    opened = await world.core.handle(press(button.action_id, ADMIN))
    assert isinstance(opened, OpenForm)
    assert [f.name for f in opened.form.fields] == ["levels", "repeat", "reack"]
    assert opened.form.fields[0].initial == "default"

    number = await world.run("/blocker add The nightly ETL fails --area data pipeline")
    assert number.startswith("Blocker #1 ")
    saved = await world.core.handle(
        policy_form(world, "responsible 1h\naccountable 3h\nchannel 1d", "1", "2h")
    )
    text = said(saved)
    assert text.startswith(
        "Saved the escalation policy of data pipeline. 1 open blocker(s) re-timed."
    )
    assert "Then the ladder runs again, 1 more time." in text
    assert await area_policy(world) == {
        "levels": [
            {"target": "responsible", "after": "1h"},
            {"target": "accountable", "after": "3h"},
            {"target": "channel", "after": "1d"},
        ],
        "repeat": 1,
        "reack": "2h",
    }
    # Opened Monday 11:00 Berlin: one business hour later.
    assert (await world.blocker(1)).next_escalation_at == datetime(2026, 3, 9, 11, tzinfo=UTC)
    again = await world.core.handle(press(button.action_id, ADMIN))
    assert again.form.fields[0].initial == "responsible 1h\naccountable 3h\nchannel 1d"
    # "default" goes back to the workspace default.
    await world.core.handle(policy_form(world, "default"))
    assert not await area_policy(world)
    assert (await world.blocker(1)).next_escalation_at == datetime(2026, 3, 9, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("levels", "repeat", "reack", "field", "message"),
    [
        ("responsible -1h", "0", "1d", "levels", '"-1h" is negative'),
        ("   ", "0", "1d", "levels", "at least one level"),
        ("boss 1h", "0", "1d", "levels", 'unknown target "boss"'),
        ("responsible 4h\naccountable 2h", "0", "1d", "levels", "must come after level 1"),
        ("responsible", "0", "1d", "levels", "needs a target and a delay"),
        ("responsible 4h", "9", "1d", "repeat", "out of range"),
        ("responsible 4h", "0", "0m", "reack", "above zero"),
        ("member:999 1h", "0", "1d", "levels", "Unknown member(s) member:999"),
    ],
)
async def test_bad_policies_save_nothing(
    world: World, levels: str, repeat: str, reack: str, field: str, message: str
) -> None:
    answer = await world.core.handle(policy_form(world, levels, repeat, reack))
    assert isinstance(answer, FormErrors)
    assert list(answer.errors) == [field]
    assert message in answer.errors[field]
    assert not await area_policy(world)


async def test_the_workspace_default(world: World) -> None:

    await world.run("/blocker add The nightly ETL fails --area data pipeline")
    text = said(await world.core.handle(command("/raci policy default", ADMIN)))
    assert "Escalation policy: workspace default" in text
    assert "Areas without a policy of their own use it (the built-in default)." in text
    saved = await world.core.handle(
        policy_form(world, f"responsible 2h\nmember:{world.members['frank']} 1d", state="default")
    )
    assert said(saved).startswith("Saved the workspace's default escalation policy. 1 open")
    async with world.db.transaction() as session:
        [settings] = [await session.get(BlockerSettings, 1)]
        assert settings is not None
        assert settings.default_policy["levels"][1] == {
            "target": f"member:{world.members['frank']}",
            "after": "1d",
        }
    assert (await world.blocker(1)).next_escalation_at == datetime(2026, 3, 9, 12, tzinfo=UTC)
    text = said(await world.core.handle(command("/raci policy data pipeline", ADMIN)))
    assert "Uses the workspace default" in text and "member #" in text
    unknown = said(await world.core.handle(command("/raci policy nowhere", ADMIN)))
    assert 'Unknown area "nowhere"' in unknown
