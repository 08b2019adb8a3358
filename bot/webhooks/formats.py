"""The two wire formats: Standard Webhooks (signed JSON) and PagerDuty Events API v2.

Standard Webhooks (https://www.standardwebhooks.com): the body is the event's JSON; the headers
are ``webhook-id`` (the same on every retry of one event, receivers dedupe on it),
``webhook-timestamp`` (Unix seconds of this attempt) and ``webhook-signature``: ``v1,`` and the
base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` keyed with the base64-decoded part of the
endpoint's ``whsec_`` secret, computed by the ``standardwebhooks`` package.

PagerDuty: ``POST`` to the events URL with ``routing_key``, ``event_action`` (trigger,
acknowledge or resolve), ``dedup_key`` (one per blocker, so the three actions meet in one
incident) and, to trigger, ``payload.summary``, ``payload.source`` and ``payload.severity``.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
USER_AGENT = "syncup-webhooks/1"
PAGERDUTY_SUMMARY_CHARS = 1024
# Our severities -> PagerDuty's.
PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "normal": "warning", "low": "info"}
# Event types -> PagerDuty actions; other types trigger.
PAGERDUTY_ACTION = {
    "blocker.acknowledged": "acknowledge",
    "blocker.resolved": "resolve",
    "blocker.cancelled": "resolve",
}


def new_secret() -> str:
    """A fresh signing secret, shown to the admin once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with the ``whsec_`` secret."""
    return _webhook(secret).sign(webhook_id, datetime.fromtimestamp(timestamp, UTC), body.decode())


@functools.lru_cache(maxsize=1024)
def _webhook(secret: str) -> Webhook:
    # Decoding the secret is most of the package's work for a small body: a burst of
    # deliveries to one hook decodes it once.
    return Webhook(secret)


def standard_request(
    event: dict[str, Any], webhook_id: str, secret: str, timestamp: int
) -> tuple[dict[str, str], bytes]:
    """Headers and body of one attempt; the signature is over this attempt's timestamp."""
    body = encode(event)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
    }
    return headers, body


def pagerduty_dedup_key(event: dict[str, Any], webhook_id: str) -> str:
    data = event.get("data") or {}
    blocker = data.get("blocker")
    if isinstance(blocker, dict) and "id" in blocker:
        return f"syncup-blocker-{blocker['id']}"
    return str(data.get("dedup_key") or f"syncup-{webhook_id}")


def pagerduty_body(event: dict[str, Any], routing_key: str, webhook_id: str) -> dict[str, Any]:
    """The Events API v2 event for one of our events."""
    data = event.get("data") or {}
    action = str(data.get("action") or PAGERDUTY_ACTION.get(event["type"], "trigger"))
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": pagerduty_dedup_key(event, webhook_id),
    }
    if action != "trigger":
        return body
    blocker = data.get("blocker") if isinstance(data.get("blocker"), dict) else None
    workspace = data.get("workspace") or {}
    source = f"syncup {workspace.get('name') or workspace.get('id') or ''}".strip()
    if blocker is None:
        summary = str(data.get("summary") or event["type"])
        payload: dict[str, Any] = {"summary": summary, "source": source, "severity": "info"}
    else:
        area = (blocker.get("area") or {}).get("name")
        where = f" ({area})" if area else ""
        summary = f"Blocker #{blocker['id']}{where}: {blocker['text']}"
        payload = {
            "summary": summary,
            "source": source,
            "severity": PAGERDUTY_SEVERITY.get(blocker.get("severity", ""), "warning"),
            "timestamp": event.get("timestamp"),
            "component": area or "blockers",
            "group": workspace.get("name") or None,
            "class": event["type"],
            "custom_details": {
                "status": blocker.get("status"),
                "reporter": (blocker.get("reporter") or {}).get("name"),
                "waiting_on": (blocker.get("waiting_on") or {}).get("name"),
                "age_seconds": blocker.get("age_seconds"),
                "change": data.get("change"),
            },
        }
        if blocker.get("link"):
            body["links"] = [{"href": blocker["link"], "text": "Where it was reported"}]
    payload["summary"] = payload["summary"][:PAGERDUTY_SUMMARY_CHARS]
    body["payload"] = {k: v for k, v in payload.items() if v is not None}
    return body
