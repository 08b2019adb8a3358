"""The four senders: how each signs a delivery, names it, and what its events carry.

- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``,
  ``X-GitHub-Event``, ``X-GitHub-Delivery`` (the same on a redelivery). No timestamp is
  signed, so replays are stopped by the delivery id alone (kept :data:`SEEN_DAYS` days).
- ``gitlab``: ``X-Gitlab-Token`` is the secret itself (compared in constant time),
  ``X-Gitlab-Event``, ``X-Gitlab-Event-UUID``.
- ``mlflow`` (3.3 and later): ``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of
  "{delivery id}.{timestamp}.{body}">`` keyed with the secret's UTF-8 bytes (as
  ``mlflow.webhooks.delivery`` computes it), ``X-MLflow-Timestamp`` (Unix seconds),
  ``X-MLflow-Delivery-Id``; the body is ``{"entity", "action", "timestamp", "data"}``.
- ``standard``: Standard Webhooks (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``), checked by the ``standardwebhooks`` package, the one that signs our
  outbound webhooks (bot.webhooks.formats).

:func:`parse` turns a verified body into an :class:`Incoming` event with flat string fields, the
placeholders a template may use (:data:`PLACEHOLDERS`), or a reason to ignore it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import WebhookVerificationError

from bot.webhooks.formats import sign

SOURCES = ("github", "gitlab", "mlflow", "standard")
TOLERANCE_SECONDS = 5 * 60
SEEN_DAYS = 30

_REPO = ("repo", "url", "author")
PLACEHOLDERS: dict[str, dict[str, tuple[str, ...]]] = {
    "github": {
        "release": ("tag", "name", *_REPO),
        "pull_request.merged": ("number", "title", "branch", "labels", *_REPO),
        "deployment_status.success": ("environment", "ref", *_REPO),
    },
    "gitlab": {
        "release": ("tag", "name", *_REPO),
        "merge_request.merged": ("number", "title", "branch", "labels", *_REPO),
        "deployment.success": ("environment", "ref", *_REPO),
    },
    "mlflow": {
        "model_version.created": ("model", "version", "source", "run_id", "description"),
        "model_version_alias.created": ("model", "alias", "version"),
        "model_version_tag.set": ("model", "version", "key", "value"),
    },
}
# A Standard Webhooks rule names any event type; its placeholders are these and data.KEY.
STANDARD_PLACEHOLDERS = ("type", "timestamp")
# The filters each event takes; labels match when the event has any of the rule's labels.
FILTERS: dict[str, tuple[str, ...]] = {
    "pull_request.merged": ("branch", "labels"),
    "merge_request.merged": ("branch", "labels"),
    "deployment_status.success": ("environment",),
    "deployment.success": ("environment",),
    "release": (),
    "model_version.created": ("model",),
    "model_version_alias.created": ("model", "alias"),
    "model_version_tag.set": ("model", "key", "value"),
}


class BadSignature(Exception):
    """401: the signature is missing or wrong, or its timestamp is too far off."""


@dataclass(frozen=True)
class Incoming:
    event: str
    fields: dict[str, str] = field(default_factory=dict)
    labels: tuple[str, ...] = ()


class Ignored(Exception):
    """200 and nothing done; the message is the reason kept in the hook's deliveries."""


def _header(headers: Mapping[str, str], name: str) -> str:
    return headers.get(name.lower(), "")


def verify(source: str, secret: str, headers: Mapping[str, str], body: bytes, now: datetime) -> str:
    """Check the delivery's signature (and timestamp); returns its delivery id.
    ``headers``: lower-case names."""
    if source == "github":
        given = _header(headers, "x-hub-signature-256")
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(given.encode("latin-1"), expected.encode()):
            raise BadSignature("bad X-Hub-Signature-256")
        return _delivery(headers, "x-github-delivery", body)
    if source == "gitlab":
        token = _header(headers, "x-gitlab-token")
        if not hmac.compare_digest(token.encode("latin-1"), secret.encode()):
            raise BadSignature("bad X-Gitlab-Token")
        return _delivery(headers, "x-gitlab-event-uuid", body)
    if source == "mlflow":
        delivery = _header(headers, "x-mlflow-delivery-id")
        stamp = _header(headers, "x-mlflow-timestamp")
        _check_time(stamp, now)
        expected = mlflow_signature(secret, delivery, stamp, body)
        if not any(
            hmac.compare_digest(given.strip().encode("latin-1"), expected.encode())
            for given in _header(headers, "x-mlflow-signature").split(" ")
        ):
            raise BadSignature("bad X-MLflow-Signature")
        return delivery or _digest(body)
    if source == "standard":
        delivery = _header(headers, "webhook-id")
        stamp = _header(headers, "webhook-timestamp")
        _check_time(stamp, now)  # against our clock (the package's verify reads the wall's)
        try:
            expected = sign(secret, delivery, int(stamp), body)  # bot.webhooks: the package
        except (WebhookVerificationError, ValueError, UnicodeDecodeError):
            raise BadSignature("bad webhook-signature") from None
        if not delivery or not any(
            hmac.compare_digest(given.encode("latin-1"), expected.encode())
            for given in _header(headers, "webhook-signature").split(" ")
        ):
            raise BadSignature("bad webhook-signature")
        return delivery[:128]
    raise BadSignature(f"unknown source {source}")


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _check_time(stamp: str, now: datetime) -> None:
    if not stamp.isdigit():
        raise BadSignature("no timestamp")
    if abs(now.timestamp() - int(stamp)) > TOLERANCE_SECONDS:
        raise BadSignature("timestamp more than 5 minutes off")


def _delivery(headers: Mapping[str, str], name: str, body: bytes) -> str:
    return _header(headers, name)[:128] or _digest(body)


def _digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()[:64]


def event_header(source: str, headers: Mapping[str, str]) -> str:
    """The sender's own event name, for the deliveries list before the body is read."""
    name = {"github": "x-github-event", "gitlab": "x-gitlab-event"}.get(source, "")
    return _header(headers, name)[:64] if name else ""


def parse(source: str, headers: Mapping[str, str], body: bytes) -> Incoming:
    """The event in a verified body; :class:`Ignored` with the reason otherwise."""
    try:
        payload = json.loads(body)
    except ValueError:
        raise Ignored("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Ignored("the body is not a JSON object")
    try:
        if source == "github":
            return _github(_header(headers, "x-github-event"), payload)
        if source == "gitlab":
            return _gitlab(_header(headers, "x-gitlab-event"), payload)
        if source == "mlflow":
            return _mlflow(payload)
        return _standard(payload)
    except (KeyError, TypeError, AttributeError) as exc:
        raise Ignored(f"the payload lacks a field this event needs ({exc})") from None


def _s(value: Any) -> str:
    return "" if value is None else str(value)


def _github(kind: str, p: dict[str, Any]) -> Incoming:
    repo = p["repository"]["full_name"]
    author = _s((p.get("sender") or {}).get("login"))
    if kind == "ping":
        return Incoming("ping", {"repo": _s(repo)})
    if kind == "release":
        if p.get("action") != "published":
            raise Ignored(f"release {p.get('action')}, not published")
        r = p["release"]
        fields = {"tag": r["tag_name"], "name": r.get("name") or r["tag_name"]}
        return Incoming(
            "release",
            {**_map(fields), "repo": repo, "url": _s(r.get("html_url")), "author": author},
        )
    if kind == "pull_request":
        pr = p["pull_request"]
        if p.get("action") != "closed" or not pr.get("merged"):
            raise Ignored(f"pull_request {p.get('action')}, not closed and merged")
        labels = tuple(_s(label["name"]) for label in pr.get("labels") or [])
        fields = {
            "number": pr["number"],
            "title": pr["title"],
            "branch": pr["base"]["ref"],
            "labels": ", ".join(labels),
            "repo": repo,
            "url": pr.get("html_url"),
            "author": (pr.get("user") or {}).get("login") or author,
        }
        return Incoming("pull_request.merged", _map(fields), labels)
    if kind == "deployment_status":
        status = p["deployment_status"]
        if status["state"] != "success":
            raise Ignored(f"deployment_status {status['state']}, not success")
        deployment = p["deployment"]
        fields = {
            "environment": status.get("environment") or deployment["environment"],
            "ref": deployment.get("ref"),
            "repo": repo,
            "url": status.get("environment_url") or status.get("target_url"),
            "author": author,
        }
        return Incoming("deployment_status.success", _map(fields))
    raise Ignored(f"GitHub event {kind or '(none)'} is not one syncup celebrates")


def _gitlab(kind: str, p: dict[str, Any]) -> Incoming:
    project = p["project"]
    repo = project.get("path_with_namespace") or project["name"]
    user = p.get("user") or {}
    author = _s(user.get("username") or user.get("name"))
    if kind == "Release Hook":
        if p.get("action") not in ("create", None):
            raise Ignored(f"release {p.get('action')}, not create")
        fields = {
            "tag": p["tag"],
            "name": p.get("name") or p["tag"],
            "repo": repo,
            "url": p.get("url"),
            "author": author,
        }
        return Incoming("release", _map(fields))
    if kind == "Merge Request Hook":
        mr = p["object_attributes"]
        if mr.get("action") != "merge" and mr.get("state") != "merged":
            raise Ignored(f"merge request {mr.get('action')}, not merged")
        labels = tuple(_s(label["title"]) for label in p.get("labels") or [])
        fields = {
            "number": mr["iid"],
            "title": mr["title"],
            "branch": mr["target_branch"],
            "labels": ", ".join(labels),
            "repo": repo,
            "url": mr.get("url"),
            "author": author,
        }
        return Incoming("merge_request.merged", _map(fields), labels)
    if kind == "Deployment Hook":
        if p["status"] != "success":
            raise Ignored(f"deployment {p['status']}, not success")
        fields = {
            "environment": p["environment"],
            "ref": p.get("ref"),
            "repo": repo,
            "url": p.get("environment_external_url") or p.get("deployable_url"),
            "author": author,
        }
        return Incoming("deployment.success", _map(fields))
    raise Ignored(f"GitLab event {kind or '(none)'} is not one syncup celebrates")


def _mlflow(p: dict[str, Any]) -> Incoming:
    event = f"{p['entity']}.{p['action']}"
    if event not in PLACEHOLDERS["mlflow"]:
        raise Ignored(f"MLflow event {event} is not one syncup celebrates")
    data = p["data"]
    fields = {"model": data["name"], "version": data["version"]}
    fields.update({k: data.get(k) for k in PLACEHOLDERS["mlflow"][event] if k not in fields})
    return Incoming(event, _map(fields))


def _standard(p: dict[str, Any]) -> Incoming:
    kind = p["type"]
    if not isinstance(kind, str) or not kind:
        raise Ignored("the payload's type is not a string")
    fields = {"type": kind, "timestamp": _s(p.get("timestamp"))}
    data = p.get("data") or {}
    if isinstance(data, dict):
        fields.update(
            {f"data.{k}": _s(v) for k, v in data.items() if isinstance(v, str | int | float | bool)}
        )
    return Incoming(kind, fields)


def _map(fields: dict[str, Any]) -> dict[str, str]:
    return {k: _s(v) for k, v in fields.items()}


def events(source: str) -> tuple[str, ...]:
    return tuple(PLACEHOLDERS.get(source, {}))


def placeholders(source: str, event: str) -> tuple[str, ...] | None:
    """The placeholders of ``event``; None for Standard Webhooks (``type``, ``timestamp``
    and ``data.KEY``)."""
    if source == "standard":
        return None
    return PLACEHOLDERS[source][event]


def seen_until(now: datetime) -> datetime:
    return datetime.fromtimestamp(now.timestamp() + SEEN_DAYS * 86400, UTC)
