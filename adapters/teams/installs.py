"""Where syncup is installed in a tenant, its first admin, and its removal.

A tenant is one syncup workspace. The app is *installed* in a tenant in each of its **scopes**:
a team it was added to (keyed by the team's id), a group chat (the chat's id) and a member's
personal scope (``personal:`` and the member). Teams says so with ``installationUpdate``
(``add``/``remove``, in the scope's conversation) and ``conversationUpdate`` (the bot in
``membersAdded``/``membersRemoved``). Each scope is a reference of kind :data:`INSTALL`.

* Removed from **one team**: syncup stops posting in that team's channels (kind
  :data:`REMOVED`, until it is added back); the rest of the tenant goes on.
* Removed from **its last scope** in the tenant (every team, chat and personal scope it was
  installed in): the tenant's data removal starts, as on Slack (:mod:`bot.workspace_removal`:
  deleted after the grace period unless it is installed again).

Teams names no admins in its activities: the member who adds syncup to a tenant where it has
no admin yet becomes its admin (and can make others admins with ``syncup role``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from adapters.teams.inbound import Activity
from adapters.teams.refs import INSTALL, PLATFORM, REMOVED, Reference, References
from bot import directory
from bot.events import Actor
from storage.db import Database
from storage.models import RoleAssignment, RoleName

log = logging.getLogger(__name__)


def scope_of(activity: Activity) -> str | None:
    """The scope an install event is about: the team, the group chat, or the member's own."""
    team = activity.channel_data.get("team")
    if isinstance(team, dict) and team.get("id"):
        return str(team["id"])
    if activity.personal:
        return f"personal:{activity.user_id}" if activity.user_id else None
    return activity.conversation_id.split(";")[0] or None


def change_of(raw: dict[str, Any]) -> str | None:
    """``add``, ``remove`` or None (members coming or going, not the bot)."""
    if raw.get("type") == "installationUpdate":
        action = str(raw.get("action") or "add")
        return "remove" if action.startswith("remove") else "add"
    bot = str((raw.get("recipient") or {}).get("id") or "")
    for key, change in (("membersAdded", "add"), ("membersRemoved", "remove")):
        people = raw.get(key) or []
        if any(isinstance(m, dict) and m.get("id") == bot for m in people):
            return change
    return None


async def added(refs: References, activity: Activity, scope: str, now: datetime) -> None:
    ref = Reference(activity.service_url, None, activity.conversation_id.split(";")[0], "")
    await refs.remember(activity.tenant, INSTALL, scope, ref, now)
    await refs.forget(activity.tenant, REMOVED, scope)


async def removed(refs: References, activity: Activity, scope: str, now: datetime) -> bool:
    """Forget the scope; True when it was the tenant's last one."""
    await refs.forget(activity.tenant, INSTALL, scope)
    if not scope.startswith("personal:") and activity.channel_data.get("team"):
        ref = Reference(activity.service_url, None, scope, "")
        await refs.remember(activity.tenant, REMOVED, scope, ref, now)
    return await refs.count(activity.tenant, INSTALL) == 0


async def first_admin(db: Database, tenant: str, actor: Actor, now: datetime) -> bool:
    """Make ``actor`` (who added syncup) admin when the tenant has no admin yet."""
    if not actor.user_id:
        return False
    async with db.transaction() as session:
        workspace = await directory.ensure_workspace(session, PLATFORM, tenant, "", now)
        admin = await session.scalar(
            select(RoleAssignment.id)
            .where(
                RoleAssignment.workspace_id == workspace.id,
                RoleAssignment.role == RoleName.ADMIN,
            )
            .limit(1)
        )
        if admin is not None:
            return False
        member = await directory.ensure_member(session, workspace, actor, now)
        session.add(
            RoleAssignment(
                workspace_id=workspace.id, member_id=member.id, role=RoleName.ADMIN, granted_at=now
            )
        )
    log.info("teams: the member who added syncup to tenant %s is its first admin", tenant)
    return True


def team_of_channel(raw: dict[str, Any]) -> str | None:
    team = (raw.get("channelData") or {}).get("team")
    return str(team["id"]) if isinstance(team, dict) and team.get("id") else None
