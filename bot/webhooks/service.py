"""Managing a workspace's endpoints: add (checked, secret encrypted), list, remove, test."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import WebhooksSection
from bot.errors import UserError
from bot.webhooks.dispatch import new_webhook_id, queue_event
from bot.webhooks.events import TEST_EVENT, envelope, parse_events, workspace_data
from bot.webhooks.formats import new_secret
from bot.webhooks.keys import Keys, KeyUnavailable
from bot.webhooks.targets import (
    ResolutionFailed,
    Resolver,
    TargetRefused,
    check_target,
    parse_url,
)
from storage.models import Member, Workspace
from storage.webhooks import WebhookEndpoint, WebhookFormat

MAX_ENDPOINTS = 25
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# PagerDuty integration (routing) keys: 32 characters; a little room either way.
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{20,64}$")


@dataclass(frozen=True)
class Added:
    endpoint: WebhookEndpoint
    secret: str | None  # the new signing secret (standard), shown once


def check_name(name: str | None) -> str:
    if not name:
        raise UserError("Name the webhook, e.g. `/raci webhook add ops https://...`.")
    if not NAME.match(name):
        raise UserError(
            f'"{name}" cannot be a webhook name: use up to 64 letters, digits, "-", "_" or ".", '
            "starting with a letter or digit."
        )
    return name


async def find(session: AsyncSession, workspace_id: int, name: str | None) -> WebhookEndpoint:
    name = check_name(name)
    endpoint = await session.scalar(
        select(WebhookEndpoint).where(
            WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.key == name.lower()
        )
    )
    if endpoint is None:
        names = await session.scalars(
            select(WebhookEndpoint.name)
            .where(WebhookEndpoint.workspace_id == workspace_id)
            .order_by(WebhookEndpoint.key)
        )
        known = ", ".join(names) or "none yet"
        raise UserError(f'No webhook named "{name}"; webhooks: {known}.')
    return endpoint


async def endpoints(session: AsyncSession, workspace_id: int) -> list[WebhookEndpoint]:
    rows = await session.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.workspace_id == workspace_id)
        .order_by(WebhookEndpoint.key)
    )
    return list(rows)


async def _checked(raw: str, settings: WebhooksSection, resolver: Resolver, what: str) -> str:
    allow = settings.allow_private_targets
    try:
        url = parse_url(raw, allow_private=allow)
        await check_target(url, allow_private=allow, resolver=resolver)
    except TargetRefused as exc:
        raise UserError(f"{what}{exc.message}") from None
    except ResolutionFailed as exc:
        raise UserError(f"{what}{exc} Check the host name.") from None
    return str(url)


async def add(
    session: AsyncSession,
    *,
    workspace: Workspace,
    member: Member,
    name: str | None,
    target: str | None,
    fmt: str,
    events: str | None,
    settings: WebhooksSection,
    keys: Keys,
    resolver: Resolver,
    now: datetime,
) -> Added:
    """Check everything first; nothing is saved when anything is wrong."""
    name = check_name(name)
    if fmt not in (WebhookFormat.STANDARD, WebhookFormat.PAGERDUTY):
        raise UserError(f'Unknown format "{fmt}"; use standard or pagerduty.')
    subscribed = parse_events(events, fmt)
    taken = await session.scalar(
        select(func.count())
        .select_from(WebhookEndpoint)
        .where(WebhookEndpoint.workspace_id == workspace.id)
    )
    if (taken or 0) >= MAX_ENDPOINTS:
        raise UserError(f"A workspace has at most {MAX_ENDPOINTS} webhooks; remove one first.")
    clash = await session.scalar(
        select(WebhookEndpoint.name).where(
            WebhookEndpoint.workspace_id == workspace.id, WebhookEndpoint.key == name.lower()
        )
    )
    if clash is not None:
        raise UserError(
            f'A webhook named "{clash}" exists already; remove it or pick another name.'
        )
    if not target:
        wanted = "ROUTING_KEY" if fmt == WebhookFormat.PAGERDUTY else "URL"
        raise UserError(f"Give the webhook's {wanted}: `/raci webhook add {name} {wanted}`.")
    secret: str | None
    if fmt == WebhookFormat.PAGERDUTY:
        if not ROUTING_KEY.match(target):
            raise UserError(
                "That is not a PagerDuty routing key: give the 32-character Integration Key of "
                "an Events API v2 integration (PagerDuty: Service, Integrations)."
            )
        try:  # the operator's setting: its form now, its address at every send
            parse_url(settings.pagerduty_events_url, allow_private=settings.allow_private_targets)
        except TargetRefused as exc:
            raise UserError(f"[webhooks] pagerduty_events_url: {exc.message}") from None
        url, stored, secret = "", target, None
    else:
        url = await _checked(target, settings, resolver, "")
        secret = new_secret()
        stored = secret
    try:
        sealed = keys.box().seal(stored)
    except KeyUnavailable as exc:
        raise UserError(str(exc)) from None
    endpoint = WebhookEndpoint(
        workspace_id=workspace.id,
        name=name,
        key=name.lower(),
        url=url,
        format=str(fmt),
        events=subscribed,
        secret=sealed,
        created_by_id=member.id,
        created_at=now,
        disabled=False,
    )
    session.add(endpoint)
    await session.flush()
    return Added(endpoint, secret)


async def remove(session: AsyncSession, workspace_id: int, name: str | None) -> WebhookEndpoint:
    """Delete it; events still queued for it are dead-lettered ("was removed") when their turn
    comes."""
    endpoint = await find(session, workspace_id, name)
    await session.delete(endpoint)
    await session.flush()
    return endpoint


async def set_disabled(
    session: AsyncSession, workspace_id: int, name: str | None, *, disabled: bool
) -> WebhookEndpoint:
    """Pause an endpoint (it keeps its secret) or turn it back on."""
    endpoint = await find(session, workspace_id, name)
    if endpoint.disabled == disabled:
        state = "disabled" if disabled else "enabled"
        raise UserError(f'Webhook "{endpoint.name}" is already {state}.')
    endpoint.disabled = disabled
    return endpoint


async def send_test(
    session: AsyncSession, workspace: Workspace, member: Member, name: str | None, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """Queue a signed test event (PagerDuty: a trigger, then its resolve); returns the
    endpoint and the test's dedupe reference."""
    endpoint = await find(session, workspace.id, name)
    if endpoint.disabled:
        raise UserError(f'Webhook "{endpoint.name}" is disabled.')
    reference = new_webhook_id()
    data = {
        "workspace": workspace_data(workspace),
        "endpoint": endpoint.name,
        "requested_by": {"id": member.platform_user_id, "name": member.display_name},
        "summary": f"syncup test event for webhook {endpoint.name}",
        "dedup_key": f"syncup-test-{reference}",
    }
    key = f"webhook:{endpoint.id}:test:{reference}"
    if endpoint.format != WebhookFormat.PAGERDUTY:
        await queue_event(session, endpoint, envelope(TEST_EVENT, now, data), key=key, now=now)
        return endpoint, reference
    trigger = await queue_event(
        session,
        endpoint,
        envelope(TEST_EVENT, now, {**data, "action": "trigger"}),
        key=key,
        now=now,
    )
    await queue_event(
        session,
        endpoint,
        envelope(TEST_EVENT, now, {**data, "action": "resolve"}),
        key=key + ":resolve",
        now=now,
        depends_on=trigger,
    )
    return endpoint, reference
