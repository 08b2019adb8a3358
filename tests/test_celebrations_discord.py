"""Celebrations on Discord, end to end: the real discord.py client against the fake Discord, on
SQLite and PostgreSQL. An admin sets the celebrations channel, ``/syncup birthday`` is answered
privately, and at 09:00 on the day (UTC: Discord profiles have no zone) the birthday is posted
with ``allowed_mentions`` naming only the member; bad dates are refused privately."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.test_kudos_discord import World, private, world

__all__ = ["world"]


async def test_a_birthday_is_posted_at_nine_with_only_the_member_mentioned(world: World) -> None:
    fake, bot = world.fake, world.bot

    async def syncup(sub: str, options: dict[str, str], who: str, admin: bool = False) -> str:
        asked = await fake.slash(
            "syncup", sub, options, user_id=who, guild=world.guild, channel="team", admin=admin
        )
        return await private(world, asked)

    answer = await syncup(
        "celebrations", {"setting": "channel", "to": f"<#{world.team}>"}, world.alice, admin=True
    )
    assert "Saved: celebrations are posted in #team." in answer
    assert "there is no month 13" in await syncup("birthday", {"date": "13-01"}, world.bob)
    assert "is not a birthday" in await syncup("birthday", {"date": "tomorrow"}, world.bob)
    saved = await syncup("birthday", {"date": "03-14"}, world.bob)
    assert "Saved: your birthday is 14 March (no year is kept)." in saved
    refused = await syncup("celebrations", {"setting": "birthdays", "to": "off"}, world.bob)
    assert "Only admins can do that." in refused
    await bot.move_to(datetime(2026, 3, 14, 8, 59, tzinfo=UTC))
    assert fake.created_messages(world.team) == []
    await bot.move_to(datetime(2026, 3, 14, 9, 1, tzinfo=UTC))
    [post] = fake.created_messages(world.team)
    assert post["content"] == f"🎂 Happy birthday, <@{world.bob}>! Have a wonderful day."
    assert post["allowed_mentions"] == {"parse": [], "users": [world.bob], "replied_user": False}
    await bot.move_to(datetime(2026, 3, 16, tzinfo=UTC))
    assert len(fake.created_messages(world.team)) == 1
