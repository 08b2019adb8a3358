"""The demo workspace the console runs on: its members (in several time zones), its channels,
and who is at the keyboard."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.events import Actor
from bot.port import ChannelInfo

PLATFORM = "console"
WORKSPACE_ID = "demo"
WORKSPACE_NAME = "Demo team"
CHANNEL_ID = "team"
CHANNEL_NAME = "team"
DM_PREFIX = "dm-"


@dataclass(frozen=True)
class DemoMember:
    user_id: str
    timezone: str
    is_admin: bool = False

    def actor(self) -> Actor:
        return Actor(self.user_id, self.user_id, self.timezone, self.is_admin)


DEMO_MEMBERS: tuple[DemoMember, ...] = (
    DemoMember("alice", "Europe/Berlin", is_admin=True),
    DemoMember("bob", "America/New_York"),
    DemoMember("chandra", "Asia/Kolkata"),
    DemoMember("dana", "America/Los_Angeles"),
    DemoMember("eve", "Europe/London"),
    DemoMember("femi", "Africa/Lagos"),
    DemoMember("gabriel", "America/Sao_Paulo"),
    DemoMember("hiro", "Asia/Tokyo"),
)
"""Eight members in eight zones: enough answers for every result to show (polls and pulse
checks hide theirs below 5 answers by default), and local dates that differ."""
MEMBERS_BY_ID: Mapping[str, DemoMember] = {m.user_id: m for m in DEMO_MEMBERS}
MEMBER_LIST = ", ".join(m.user_id for m in DEMO_MEMBERS)


@dataclass(frozen=True)
class DemoChannel:
    channel_id: str
    name: str
    members: tuple[str, ...]
    # Whether syncup is in the channel: it may post only there. A channel it is not in shows,
    # on the console, what Slack and Discord answer when a report channel is one of those.
    bot_is_in: bool = True

    def info(self) -> ChannelInfo:
        if self.bot_is_in:
            return ChannelInfo(self.channel_id, self.name)
        return ChannelInfo(
            self.channel_id,
            self.name,
            can_post=False,
            reason=(
                f"I can't post in #{self.name}: invite @syncup to it first (/invite @syncup), "
                f"or choose a channel I am in, like #{CHANNEL_NAME}."
            ),
        )


RANDOM_CHANNEL_ID = "random"
DEMO_CHANNELS: tuple[DemoChannel, ...] = (
    DemoChannel(CHANNEL_ID, CHANNEL_NAME, tuple(m.user_id for m in DEMO_MEMBERS)),
    # Not seeded: syncup learns it from the directory when a form names it, and cannot post.
    DemoChannel(RANDOM_CHANNEL_ID, "random", ("alice", "bob", "chandra"), bot_is_in=False),
)
CHANNELS_BY_ID: Mapping[str, DemoChannel] = {c.channel_id: c for c in DEMO_CHANNELS}


@dataclass(frozen=True)
class DemoGroup:
    """A user group of the demo workspace (a Slack user group, a Discord role): ``@backend``
    as Responsible in the RACI matrix reaches its members."""

    group_id: str
    name: str
    members: tuple[str, ...]


DEMO_GROUPS: tuple[DemoGroup, ...] = (
    DemoGroup("g-backend", "backend", ("bob", "chandra")),
    DemoGroup("g-ml", "ml", ("dana", "hiro", "femi")),
)


def dm_channel(user_id: str) -> str:
    return DM_PREFIX + user_id


def dm_user(channel_id: str | None) -> str | None:
    if channel_id and channel_id.startswith(DM_PREFIX):
        return channel_id[len(DM_PREFIX) :]
    return None


class ActingMember:
    """Who is at the keyboard; ``/as`` changes it."""

    def __init__(self, member: DemoMember) -> None:
        self.member = member

    @property
    def user_id(self) -> str:
        return self.member.user_id
