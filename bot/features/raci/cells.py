"""Typed references (``@ana``, ``@data-eng``, ``#data``, platform mentions) turned into the
matrix's cells, checked against the workspace, and the RACI rules on a whole area.

A reference is, in this order:
- a platform mention: ``<@U123>`` / ``<@123>`` (a member), ``<!subteam^S123|@data-eng>`` (a
  Slack user group), ``<@&123>`` (a Discord role), ``<#C123|data>`` / ``<#123>`` (a channel);
- ``#name``: a channel;
- ``@name`` or ``name``: a member with that display name or platform id, else a user group with
  that name (Slack handle, Discord role name), asked of the platform when it can say (and, when
  it cannot, one the matrix already holds).
Without a platform to ask (``syncup raci import``), a group or a channel can also be given by
its platform id (``@S0123ABCD``, ``#C0123ABCD``; Discord: the snowflake).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import directory
from bot.commands.parse import channel_ref, member_ref
from bot.errors import UserError
from bot.features.raci.people import CHANNEL, GROUP, MEMBER
from bot.port import DirectoryUnavailable, PlatformDirectory, PlatformGroups
from storage.models import Channel, Member, Workspace
from storage.raci import RaciArea, RaciAssignment, RaciRole

ROLE_OF_FIELD = {
    "responsible": RaciRole.RESPONSIBLE,
    "accountable": RaciRole.ACCOUNTABLE,
    "consulted": RaciRole.CONSULTED,
    "informed": RaciRole.INFORMED,
}
ROLE_WORDS = {
    RaciRole.RESPONSIBLE: "Responsible",
    RaciRole.ACCOUNTABLE: "Accountable",
    RaciRole.CONSULTED: "Consulted",
    RaciRole.INFORMED: "Informed",
}
_SLACK_GROUP = re.compile(r"^<!subteam\^([A-Z0-9]+)(?:\|@?([^>]*))?>$")
_DISCORD_ROLE = re.compile(r"^<@&(\d+)>$")
_GROUP_ID = {"slack": re.compile(r"^S[A-Z0-9]{6,}$"), "discord": re.compile(r"^\d{15,21}$")}
_CHANNEL_ID = {"slack": re.compile(r"^[CG][A-Z0-9]{6,}$"), "discord": re.compile(r"^\d{15,21}$")}


@dataclass(frozen=True)
class Cell:
    """One cell to save: ``who`` as stored, ``member_id`` for a member, ``label`` to show."""

    who: str
    label: str
    member_id: int | None = None

    @property
    def kind(self) -> str:
        return self.who.split(":", 1)[0]


class Resolver:
    """Resolves references of one workspace; ``platform`` is the port's directory (None: the
    database only, as the command line has it)."""

    def __init__(
        self,
        session: AsyncSession,
        workspace: Workspace,
        platform: PlatformDirectory | None,
        now: datetime,
    ) -> None:
        self.session = session
        self.workspace = workspace
        self.platform = platform
        self.now = now
        self._members: list[Member] | None = None

    async def cell(self, raw: str, role: RaciRole) -> Cell:
        word = ROLE_WORDS[role]
        group = await self._group(raw)
        if group is not None:
            if role is RaciRole.ACCOUNTABLE:
                raise UserError(
                    f"Accountable is one person, not a group ({raw}); name the one who answers "
                    "for the area, and make the group Responsible."
                )
            return group
        if raw.startswith(("#", "<#")):
            if role in (RaciRole.RESPONSIBLE, RaciRole.ACCOUNTABLE):
                raise UserError(
                    f"{word} takes people or user groups, not a channel ({raw}); channels can "
                    "be Consulted or Informed."
                )
            return await self._channel(raw)
        member = await self._member(raw)
        return Cell(f"{MEMBER}{member.id}", member.display_name, member.id)

    async def cells(self, raws: list[str], role: RaciRole) -> list[Cell]:
        found: list[Cell] = []
        for raw in raws:
            cell = await self.cell(raw, role)
            if cell.who not in (c.who for c in found):
                found.append(cell)
        return found

    # -- members ------------------------------------------------------------------------------

    async def _known_members(self) -> list[Member]:
        if self._members is None:
            self._members = list(
                await self.session.scalars(
                    select(Member).where(Member.workspace_id == self.workspace.id)
                )
            )
        return self._members

    async def _local_member(self, name: str) -> Member | None:
        wanted = name.casefold()
        for member in await self._known_members():
            if wanted in (member.display_name.casefold(), member.platform_user_id.casefold()):
                return member
        return None

    async def _member(self, raw: str) -> Member:
        ref = member_ref(raw)
        if ref.user_id is None:
            local = await self._local_member(ref.name)
            if local is not None:
                return local
        try:
            return await directory.resolve_member(
                self.session, self.workspace, ref, self.platform, now=self.now
            )
        except UserError as exc:
            if ref.user_id is not None:
                raise
            message = exc.message.replace("No member named", "No member or user group named")
            if self.platform is None:
                message += (
                    " A user group syncup has not seen yet is named by its platform id "
                    "(@S0123ABCD on Slack, the role's id on Discord)."
                )
            raise UserError(message) from None

    # -- groups -------------------------------------------------------------------------------

    async def _group(self, raw: str) -> Cell | None:
        slack = _SLACK_GROUP.match(raw)
        if slack:
            return await self._group_by_id(slack.group(1), slack.group(2) or slack.group(1))
        discord = _DISCORD_ROLE.match(raw)
        if discord:
            return await self._group_by_id(discord.group(1), discord.group(1))
        if raw.startswith(("#", "<")):
            return None
        name = raw.removeprefix("@")
        if await self._local_member(name) is not None:
            return None
        pattern = _GROUP_ID.get(self.workspace.platform)
        if pattern is not None and pattern.match(name):
            return await self._group_by_id(name, name)
        if isinstance(self.platform, PlatformGroups):
            try:
                info = await self.platform.group_info(self.workspace.external_id, name=name)
            except DirectoryUnavailable as exc:
                raise UserError(str(exc)) from None
            if info is not None:
                return Cell(f"{GROUP}{info.group_id}", info.name)
        return await self._stored_group(name)

    async def _group_by_id(self, group_id: str, fallback: str) -> Cell:
        if isinstance(self.platform, PlatformGroups):
            try:
                info = await self.platform.group_info(self.workspace.external_id, group_id=group_id)
            except DirectoryUnavailable as exc:
                raise UserError(str(exc)) from None
            if info is None:
                raise UserError(f"There is no user group {fallback} in this workspace.")
            return Cell(f"{GROUP}{info.group_id}", info.name)
        stored = await self._stored_group(group_id, by_id=True)
        return stored or Cell(f"{GROUP}{group_id}", fallback)

    async def _stored_group(self, name: str, *, by_id: bool = False) -> Cell | None:
        """A group some area of this workspace already holds, by its label (or id)."""
        rows = await self.session.execute(
            select(RaciAssignment.who, RaciAssignment.label)
            .join(RaciArea, RaciArea.id == RaciAssignment.area_id)
            .where(
                RaciArea.workspace_id == self.workspace.id,
                RaciAssignment.who.startswith(GROUP),
            )
        )
        for who, label in rows:
            key = who.removeprefix(GROUP) if by_id else label
            if key.casefold() == name.casefold():
                return Cell(who, label)
        return None

    # -- channels -----------------------------------------------------------------------------

    async def _channel(self, raw: str) -> Cell:
        ref = channel_ref(raw)
        pattern = _CHANNEL_ID.get(self.workspace.platform)
        if self.platform is None and ref.channel_id is None and pattern is not None:
            if pattern.match(ref.name):
                stored = await self.session.scalar(
                    select(Channel).where(
                        Channel.workspace_id == self.workspace.id,
                        Channel.external_id == ref.name,
                    )
                )
                return Cell(f"{CHANNEL}{ref.name}", stored.name if stored else ref.name)
        channel = await directory.resolve_channel(
            self.session, self.workspace, ref, self.platform, now=self.now
        )
        return Cell(f"{CHANNEL}{channel.external_id}", channel.name)

    async def area_channel(self, raw: str) -> str:
        """The platform id of the channel an area's blocker cards go to; syncup must be able
        to post there."""
        ref = channel_ref(raw if raw.startswith(("#", "<#")) else f"#{raw}")
        channel = await directory.resolve_channel(
            self.session, self.workspace, ref, self.platform, now=self.now, to_post=True
        )
        return channel.external_id


def check_roles(cells: dict[RaciRole, list[Cell]]) -> dict[RaciRole, str]:
    """The RACI rules on an area's cells: at least one Responsible, exactly one Accountable
    (a member). Returns each problem by role (empty: fine)."""
    problems: dict[RaciRole, str] = {}
    if not cells.get(RaciRole.RESPONSIBLE):
        problems[RaciRole.RESPONSIBLE] = (
            "Name at least one Responsible: the people or user group doing the work."
        )
    accountable = cells.get(RaciRole.ACCOUNTABLE, [])
    if not accountable:
        problems[RaciRole.ACCOUNTABLE] = (
            "An area needs exactly one Accountable: name the one person who answers for it."
        )
    elif len(accountable) > 1:
        names = " and ".join(f"@{c.label}" for c in accountable)
        problems[RaciRole.ACCOUNTABLE] = (
            f"Only one person can be Accountable (the RACI rule); you named {names}. "
            "Make the others Responsible or Consulted."
        )
    return problems


def references(
    cells: list[Cell],
    members: dict[int, Member],
    group_labels: dict[str, str],
    platform: str,
) -> list[str]:
    """Cells written back as references that resolve to the same cells: ``@name`` when the
    name names only that member (or group), else the platform id; ``#name`` for a channel.
    ``members``: the workspace's members by id; ``group_labels``: every group's id -> label.
    Used for an edit form's values and for ``syncup raci export``."""
    names: dict[str, int] = {}
    for member in members.values():
        key = member.display_name.casefold()
        names[key] = names.get(key, 0) + 1
    group_names: dict[str, int] = {}
    for label in group_labels.values():
        group_names[label.casefold()] = group_names.get(label.casefold(), 0) + 1
    out: list[str] = []
    for cell in cells:
        if cell.who.startswith(CHANNEL):
            out.append(f"#{cell.label}" if cell.label else f"#{cell.who.removeprefix(CHANNEL)}")
        elif cell.who.startswith(GROUP):
            group_id = cell.who.removeprefix(GROUP)
            label = cell.label.casefold()
            unique = group_names.get(label, 0) == 1 and label not in names
            out.append(f"@{cell.label}" if unique else f"@{group_id}")
        else:
            member = members[cell.member_id or 0]
            unique = names[member.display_name.casefold()] == 1
            out.append(f"@{member.display_name}" if unique else member.platform_user_id)
    return out


def join_references(found: list[str]) -> str:
    """References on one line, a name with spaces in quotes (as :func:`fields.refs` reads)."""
    return " ".join(f'"{ref}"' if " " in ref else ref for ref in found)
