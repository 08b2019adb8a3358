"""What the inbound signature checks promise, edge by edge (found by mutation testing, issue 17):
each sender's delivery is accepted only with the right secret, its header read whatever its case
on the wire, its timestamp within five minutes either way (the edge included), its delivery id
kept (cut to the column's 128 characters) or, without one, the body's digest; and a verified body
turns into the event and the fields the rules and templates use, or a reason to ignore it.

``sources.verify`` and ``sources.parse`` are what the receiver calls with each request's
lower-cased headers (tests/test_hooks_inbound.py drives them over HTTP)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from bot.features.hooks import sources
from bot.webhooks import formats
from bot.webhooks.formats import sign

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)
STAMP = int(NOW.timestamp())
BODY = b'{"hello": "world"}'
SECRET = "gh-secret"
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def github(secret: str = SECRET, body: bytes = BODY, **extra: str) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", **extra}


def mlflow_sig(secret: str, delivery: str, stamp: str, body: bytes = BODY) -> str:
    signed = f"{delivery}.{stamp}.".encode() + body
    return (
        "v1,"
        + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    )


def mlflow(delivery: str = "dlv-1", stamp: int = STAMP, secret: str = SECRET) -> dict[str, str]:
    return {
        "x-mlflow-delivery-id": delivery,
        "x-mlflow-timestamp": str(stamp),
        "x-mlflow-signature": mlflow_sig(secret, delivery, str(stamp)),
    }


def standard(delivery: str = "msg_1", stamp: int = STAMP, secret: str = WHSEC) -> dict[str, str]:
    return {
        "webhook-id": delivery,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, delivery, stamp, BODY),
    }


def digest_of(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def refused(
    source: str, headers: dict[str, str], *, match: str, secret: str = SECRET, body: bytes = BODY
) -> None:
    """The delivery is refused (a 401) with exactly this reason in the log."""
    with pytest.raises(sources.BadSignature) as refusal:
        sources.verify(source, secret, headers, body, NOW)
    assert str(refusal.value) == match


# --- GitHub --------------------------------------------------------------------------------------


def test_github_returns_its_delivery_id_or_the_bodys_digest_without_one() -> None:
    assert (
        sources.verify("github", SECRET, github(**{"x-github-delivery": "g-1"}), BODY, NOW) == "g-1"
    )
    without = sources.verify("github", SECRET, github(), BODY, NOW)
    assert without == digest_of(BODY) and len(without) == len("sha256:") + 64
    assert sources.verify("github", SECRET, github(body=b"{}"), b"{}", NOW) == digest_of(b"{}")


def test_a_delivery_id_longer_than_the_column_is_cut_to_128_characters() -> None:
    long = "d" * 200
    assert sources.verify("github", SECRET, github(**{"x-github-delivery": long}), BODY, NOW) == (
        "d" * 128
    )
    lab = {"x-gitlab-token": SECRET, "x-gitlab-event-uuid": long}
    assert sources.verify("gitlab", SECRET, lab, BODY, NOW) == "d" * 128
    std = standard(delivery=long)
    assert sources.verify("standard", WHSEC, std, BODY, NOW) == "d" * 128


def test_github_refuses_a_wrong_secret_a_missing_signature_and_a_bare_digest() -> None:
    refused("github", github(secret="other"), match="bad X-Hub-Signature-256")
    refused("github", {}, match="bad X-Hub-Signature-256")
    bare = github()["x-hub-signature-256"].removeprefix("sha256=")
    refused("github", {"x-hub-signature-256": bare}, match="bad X-Hub-Signature-256")
    # A header that is not ASCII (the receiver decodes headers as latin-1) is refused, not a 500.
    refused("github", {"x-hub-signature-256": "sha256=é"}, match="bad X-Hub-Signature-256")


def test_headers_are_looked_up_by_their_lower_case_names() -> None:
    # The receiver lower-cases every header name; a name looked up in another case is never found.
    headers = github(**{"x-github-delivery": "g-2"})
    assert sources.verify("github", SECRET, headers, BODY, NOW) == "g-2"
    assert sources.event_header("github", {"x-github-event": "release"}) == "release"


# --- GitLab --------------------------------------------------------------------------------------


def test_gitlab_takes_its_token_as_the_secret_and_returns_its_event_uuid() -> None:
    headers = {"x-gitlab-token": SECRET, "x-gitlab-event-uuid": "u-1"}
    assert sources.verify("gitlab", SECRET, headers, BODY, NOW) == "u-1"
    assert sources.verify("gitlab", SECRET, {"x-gitlab-token": SECRET}, BODY, NOW) == digest_of(
        BODY
    )
    refused(
        "gitlab",
        {"x-gitlab-token": "other", "x-gitlab-event-uuid": "u"},
        match="bad X-Gitlab-Token",
    )
    refused("gitlab", {"x-gitlab-event-uuid": "u"}, match="bad X-Gitlab-Token")
    refused("gitlab", {"x-gitlab-token": SECRET + "é"}, match="bad X-Gitlab-Token")


# --- MLflow --------------------------------------------------------------------------------------


def test_mlflow_returns_its_delivery_id_or_the_bodys_digest_without_one() -> None:
    assert sources.verify("mlflow", SECRET, mlflow(), BODY, NOW) == "dlv-1"
    assert sources.verify("mlflow", SECRET, mlflow(delivery=""), BODY, NOW) == digest_of(BODY)


def test_mlflow_accepts_any_one_of_several_signatures_with_surrounding_spaces() -> None:
    good = mlflow()
    good["x-mlflow-signature"] = f"v1,bogus=  {good['x-mlflow-signature']} "
    assert sources.verify("mlflow", SECRET, good, BODY, NOW) == "dlv-1"


def test_mlflow_refuses_a_wrong_secret_a_missing_signature_and_another_delivery_id() -> None:
    refused("mlflow", mlflow(secret="other"), match="bad X-MLflow-Signature")
    unsigned = mlflow()
    del unsigned["x-mlflow-signature"]
    refused("mlflow", unsigned, match="bad X-MLflow-Signature")
    moved = mlflow()
    moved["x-mlflow-delivery-id"] = "dlv-2"  # the id is signed: it cannot be changed
    refused("mlflow", moved, match="bad X-MLflow-Signature")
    refused("mlflow", {**mlflow(), "x-mlflow-signature": "v1,é"}, match="bad X-MLflow-Signature")


def test_mlflow_signature_is_over_id_timestamp_and_body_with_the_secret() -> None:
    assert sources.mlflow_signature(SECRET, "dlv-1", str(STAMP), BODY) == mlflow_sig(
        SECRET, "dlv-1", str(STAMP)
    )


@pytest.mark.parametrize("source", ["mlflow", "standard"])
def test_a_timestamp_exactly_five_minutes_off_either_way_is_accepted(source: str) -> None:
    for stamp in (STAMP - 300, STAMP + 300):
        headers = mlflow(stamp=stamp) if source == "mlflow" else standard(stamp=stamp)
        secret = SECRET if source == "mlflow" else WHSEC
        assert sources.verify(source, secret, headers, BODY, NOW)


@pytest.mark.parametrize("source", ["mlflow", "standard"])
def test_a_timestamp_a_second_over_five_minutes_off_either_way_is_refused(source: str) -> None:
    for stamp in (STAMP - 301, STAMP + 301):
        headers = mlflow(stamp=stamp) if source == "mlflow" else standard(stamp=stamp)
        secret = SECRET if source == "mlflow" else WHSEC
        refused(source, headers, match="timestamp more than 5 minutes off", secret=secret)
    # Also a second off at a clock reading between two whole seconds.
    headers = mlflow(stamp=STAMP - 300) if source == "mlflow" else standard(stamp=STAMP - 300)
    late = NOW + timedelta(seconds=1.5)
    with pytest.raises(sources.BadSignature, match="5 minutes"):
        sources.verify(source, SECRET if source == "mlflow" else WHSEC, headers, BODY, late)


@pytest.mark.parametrize("stamp", ["", "soon", "-5", "1.5e9", " 1"])
@pytest.mark.parametrize("source", ["mlflow", "standard"])
def test_a_missing_or_malformed_timestamp_is_refused_before_the_signature(
    source: str, stamp: str
) -> None:
    headers = mlflow() if source == "mlflow" else standard()
    headers["x-mlflow-timestamp" if source == "mlflow" else "webhook-timestamp"] = stamp
    refused(source, headers, match="no timestamp", secret=SECRET if source == "mlflow" else WHSEC)


# --- Standard Webhooks ---------------------------------------------------------------------------


def test_standard_webhooks_need_a_webhook_id() -> None:
    headers = standard(delivery="")
    refused("standard", headers, match="bad webhook-signature", secret=WHSEC)
    refused(
        "standard",
        {**standard(), "webhook-id": "msg_2"},
        match="bad webhook-signature",
        secret=WHSEC,
    )


def test_standard_webhooks_refuse_a_wrong_secret_and_bad_signatures_without_an_error() -> None:
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    refused("standard", standard(), match="bad webhook-signature", secret=other)
    refused("standard", standard(), match="bad webhook-signature", secret="whsec_abcde")
    refused(
        "standard",
        {**standard(), "webhook-signature": ""},
        match="bad webhook-signature",
        secret=WHSEC,
    )
    refused(
        "standard",
        {**standard(), "webhook-signature": "v1,é"},
        match="bad webhook-signature",
        secret=WHSEC,
    )
    # A body that is not UTF-8 cannot have been signed by the package: refused, not a 500.
    refused("standard", standard(), match="bad webhook-signature", secret=WHSEC, body=b"\xff")


def test_standard_webhooks_accept_any_one_of_several_signatures() -> None:
    headers = standard()
    headers["webhook-signature"] = f"v1,bogus= {headers['webhook-signature']} v2,other"
    assert sources.verify("standard", WHSEC, headers, BODY, NOW) == "msg_1"


def test_an_unknown_source_is_refused() -> None:
    refused("bitbucket", github(), match="unknown source bitbucket")


# --- event names and how long a delivery id is remembered ----------------------------------------


def test_the_event_header_is_the_senders_own_name_cut_to_64() -> None:
    assert sources.event_header("github", {"x-github-event": "e" * 80}) == "e" * 64
    assert sources.event_header("gitlab", {"x-gitlab-event": "Push Hook"}) == "Push Hook"
    assert sources.event_header("gitlab", {"x-github-event": "release"}) == ""
    # MLflow and Standard Webhooks name the event in the body only: no header is read for it,
    # whatever headers come.
    assert sources.event_header("mlflow", AnyHeader()) == ""
    assert sources.event_header("standard", AnyHeader()) == ""
    assert sources.event_header("github", AnyHeader()) == "spoofed"


class AnyHeader(dict[str, str]):
    """Headers that have a value under every name."""

    def get(self, key: str, default: object = None) -> str:  # type: ignore[override]
        return "spoofed"


def test_a_delivery_id_is_remembered_for_thirty_days() -> None:
    assert sources.seen_until(NOW) == NOW + timedelta(days=30)
    assert sources.seen_until(NOW).tzinfo is not None


# --- what a verified body says ----------------------------------------------------------------


def parsed(source: str, payload: object, event: str = "") -> sources.Incoming:
    header = {"github": "x-github-event", "gitlab": "x-gitlab-event"}.get(source, "x-event")
    return sources.parse(source, {header: event}, json.dumps(payload).encode())


def ignored(source: str, payload: object, event: str = "") -> str:
    with pytest.raises(sources.Ignored) as why:
        parsed(source, payload, event)
    return str(why.value)


REPO = {"full_name": "acme/shop"}


def test_a_body_that_is_no_json_object_is_ignored_with_the_reason() -> None:
    with pytest.raises(sources.Ignored) as not_json:
        sources.parse("github", {"x-github-event": "release"}, b"{nope")
    assert str(not_json.value) == "the body is not JSON"
    assert ignored("github", ["release"], "release") == "the body is not a JSON object"
    assert ignored("standard", "text") == "the body is not a JSON object"
    assert ignored("github", {"action": "published"}, "release") == (
        "the payload lacks a field this event needs ('repository')"
    )
    assert ignored(
        "github", {"repository": REPO, "action": "published", "release": None}, "release"
    ) == ("the payload lacks a field this event needs ('NoneType' object is not subscriptable)")
    assert ignored("github", {"repository": []}, "ping").startswith(
        "the payload lacks a field this event needs (list indices must be integers"
    )
    assert ignored("gitlab", {"project": "acme"}, "Release Hook") == (
        "the payload lacks a field this event needs ('str' object has no attribute 'get')"
    )


def test_a_github_ping_and_published_release() -> None:
    assert parsed("github", {"repository": REPO}, "ping") == sources.Incoming(
        "ping", {"repo": "acme/shop"}
    )
    release = {
        "action": "published",
        "release": {"tag_name": "v2", "name": "Two", "html_url": "https://gh/r/v2"},
        "repository": REPO,
        "sender": {"login": "octocat"},
    }
    assert parsed("github", release, "release") == sources.Incoming(
        "release",
        {
            "tag": "v2",
            "name": "Two",
            "repo": "acme/shop",
            "url": "https://gh/r/v2",
            "author": "octocat",
        },
    )
    # Without a name the tag stands for it; without a sender or an address, empty fields.
    bare = {"action": "published", "release": {"tag_name": "v3", "name": ""}, "repository": REPO}
    assert parsed("github", bare, "release").fields == {
        "tag": "v3",
        "name": "v3",
        "repo": "acme/shop",
        "url": "",
        "author": "",
    }
    assert parsed("github", {**bare, "sender": None}, "release").fields["author"] == ""
    assert ignored("github", {**release, "action": "created"}, "release") == (
        "release created, not published"
    )
    assert ignored("github", {"repository": REPO}, "release") == "release None, not published"
    assert ignored("github", {"repository": REPO}, "issues") == (
        "GitHub event issues is not one syncup celebrates"
    )
    assert ignored("github", {"repository": REPO}, "") == (
        "GitHub event (none) is not one syncup celebrates"
    )


def github_pr(**change: object) -> dict[str, object]:
    pr = {
        "number": 7,
        "title": "Faster checkout",
        "merged": True,
        "base": {"ref": "main"},
        "labels": [{"name": "release"}, {"name": "Hotfix"}],
        "html_url": "https://gh/pr/7",
        "user": {"login": "ana"},
    }
    pr.update(change)
    return {"action": "closed", "pull_request": pr, "repository": REPO, "sender": {"login": "bo"}}


def test_a_github_pull_request_counts_only_when_closed_and_merged() -> None:
    assert parsed("github", github_pr(), "pull_request") == sources.Incoming(
        "pull_request.merged",
        {
            "number": "7",
            "title": "Faster checkout",
            "branch": "main",
            "labels": "release, Hotfix",
            "repo": "acme/shop",
            "url": "https://gh/pr/7",
            "author": "ana",
        },
        ("release", "Hotfix"),
    )
    # The sender is the author when the pull request names no user; no labels, none.
    alone = parsed("github", github_pr(user=None, labels=None), "pull_request")
    assert alone.fields["author"] == "bo" and alone.fields["labels"] == "" and alone.labels == ()
    closed = github_pr(merged=False)
    assert ignored("github", closed, "pull_request") == (
        "pull_request closed, not closed and merged"
    )
    reopened = {**github_pr(), "action": "reopened"}
    assert ignored("github", reopened, "pull_request") == (
        "pull_request reopened, not closed and merged"
    )


def test_a_github_deployment_status_counts_only_on_success() -> None:
    payload = {
        "deployment_status": {
            "state": "success",
            "environment": "production",
            "environment_url": "https://shop",
            "target_url": "https://ci/1",
        },
        "deployment": {"environment": "staging", "ref": "v2"},
        "repository": REPO,
        "sender": {"login": "octocat"},
    }
    assert parsed("github", payload, "deployment_status") == sources.Incoming(
        "deployment_status.success",
        {
            "environment": "production",
            "ref": "v2",
            "repo": "acme/shop",
            "url": "https://shop",
            "author": "octocat",
        },
    )
    # The deployment's environment and the target address when the status has neither.
    status = {"state": "success", "target_url": "https://ci/1"}
    fallback = parsed("github", {**payload, "deployment_status": status}, "deployment_status")
    assert fallback.fields["environment"] == "staging"
    assert fallback.fields["url"] == "https://ci/1"
    failed = {**payload, "deployment_status": {"state": "failure"}}
    assert ignored("github", failed, "deployment_status") == (
        "deployment_status failure, not success"
    )


PROJECT = {"path_with_namespace": "acme/api", "name": "api"}


def test_a_gitlab_release_is_its_creation() -> None:
    payload = {
        "action": "create",
        "tag": "v9",
        "name": "Nine",
        "url": "https://gl/r/v9",
        "project": PROJECT,
        "user": {"username": "ana", "name": "Ana A"},
    }
    assert parsed("gitlab", payload, "Release Hook") == sources.Incoming(
        "release",
        {
            "tag": "v9",
            "name": "Nine",
            "repo": "acme/api",
            "url": "https://gl/r/v9",
            "author": "ana",
        },
    )
    # No action (older GitLab), no name, a project with only a name, a user with only a name.
    older = {"tag": "v9", "project": {"name": "api"}, "user": {"name": "Ana A"}}
    assert parsed("gitlab", older, "Release Hook").fields == {
        "tag": "v9",
        "name": "v9",
        "repo": "api",
        "url": "",
        "author": "Ana A",
    }
    assert parsed("gitlab", {**older, "user": None}, "Release Hook").fields["author"] == ""
    assert ignored("gitlab", {**payload, "action": "update"}, "Release Hook") == (
        "release update, not create"
    )
    assert ignored("gitlab", payload, "Push Hook") == (
        "GitLab event Push Hook is not one syncup celebrates"
    )
    assert ignored("gitlab", payload, "") == "GitLab event (none) is not one syncup celebrates"


def test_a_gitlab_merge_request_counts_when_merged() -> None:
    mr = {
        "iid": 12,
        "title": "Retry payments",
        "target_branch": "main",
        "url": "https://gl/mr/12",
        "action": "merge",
        "state": "merged",
    }
    payload = {
        "object_attributes": mr,
        "labels": [{"title": "backend"}, {"title": "release"}],
        "project": PROJECT,
        "user": {"username": "ana"},
    }
    assert parsed("gitlab", payload, "Merge Request Hook") == sources.Incoming(
        "merge_request.merged",
        {
            "number": "12",
            "title": "Retry payments",
            "branch": "main",
            "labels": "backend, release",
            "repo": "acme/api",
            "url": "https://gl/mr/12",
            "author": "ana",
        },
        ("backend", "release"),
    )
    # Either the merge action or the merged state is enough.
    for one in ({"action": "merge", "state": "opened"}, {"action": "update", "state": "merged"}):
        got = parsed(
            "gitlab", {**payload, "object_attributes": {**mr, **one}}, "Merge Request Hook"
        )
        assert got.event == "merge_request.merged"
    unlabelled = parsed("gitlab", {**payload, "labels": None}, "Merge Request Hook")
    assert unlabelled.labels == () and unlabelled.fields["labels"] == ""
    opened = {**payload, "object_attributes": {**mr, "action": "open", "state": "opened"}}
    assert ignored("gitlab", opened, "Merge Request Hook") == "merge request open, not merged"


def test_a_gitlab_deployment_counts_only_on_success() -> None:
    payload = {
        "status": "success",
        "environment": "production",
        "ref": "main",
        "environment_external_url": "https://api",
        "deployable_url": "https://gl/jobs/1",
        "project": PROJECT,
        "user": {"username": "ana"},
    }
    assert parsed("gitlab", payload, "Deployment Hook") == sources.Incoming(
        "deployment.success",
        {
            "environment": "production",
            "ref": "main",
            "repo": "acme/api",
            "url": "https://api",
            "author": "ana",
        },
    )
    plain = {k: v for k, v in payload.items() if k != "environment_external_url"}
    assert parsed("gitlab", plain, "Deployment Hook").fields["url"] == "https://gl/jobs/1"
    assert ignored("gitlab", {**payload, "status": "failed"}, "Deployment Hook") == (
        "deployment failed, not success"
    )


def test_mlflow_events_carry_their_own_fields() -> None:
    created = {
        "entity": "model_version",
        "action": "created",
        "timestamp": "t",
        "data": {
            "name": "fraud",
            "version": "3",
            "source": "s3://m/3",
            "run_id": "r1",
            "description": None,
            "tags": {"x": "y"},
        },
    }
    assert parsed("mlflow", created) == sources.Incoming(
        "model_version.created",
        {"model": "fraud", "version": "3", "source": "s3://m/3", "run_id": "r1", "description": ""},
    )
    tag = {
        "entity": "model_version_tag",
        "action": "set",
        "data": {"name": "fraud", "version": 4, "key": "stage", "value": "prod"},
    }
    assert parsed("mlflow", tag) == sources.Incoming(
        "model_version_tag.set", {"model": "fraud", "version": "4", "key": "stage", "value": "prod"}
    )
    deleted = {**created, "action": "deleted"}
    assert ignored("mlflow", deleted) == (
        "MLflow event model_version.deleted is not one syncup celebrates"
    )


def test_a_standard_webhook_carries_its_type_timestamp_and_plain_data_values() -> None:
    payload = {
        "type": "deploy.finished",
        "timestamp": "2026-12-07T09:00:00Z",
        "data": {"service": "billing", "n": 3, "ok": True, "ratio": 0.5, "nested": {"a": 1}},
    }
    assert parsed("standard", payload) == sources.Incoming(
        "deploy.finished",
        {
            "type": "deploy.finished",
            "timestamp": "2026-12-07T09:00:00Z",
            "data.service": "billing",
            "data.n": "3",
            "data.ok": "True",
            "data.ratio": "0.5",
        },
    )
    assert parsed("standard", {"type": "ping"}).fields == {"type": "ping", "timestamp": ""}
    assert parsed("standard", {"type": "ping", "data": [1, 2]}).fields == {
        "type": "ping",
        "timestamp": "",
    }
    for kind in ("", 5, None):
        assert ignored("standard", {"type": kind}) == "the payload's type is not a string"


def test_each_sender_offers_its_own_events_and_placeholders() -> None:
    assert sources.events("github") == (
        "release",
        "pull_request.merged",
        "deployment_status.success",
    )
    assert sources.events("standard") == ()
    assert sources.placeholders("standard", "anything") is None
    assert sources.placeholders("mlflow", "model_version_alias.created") == (
        "model",
        "alias",
        "version",
    )


# --- what syncup's own webhooks send (bot.webhooks.formats) ------------------------------------


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = formats.new_secret(), formats.new_secret()
    assert first.startswith("whsec_") and first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32


def test_a_body_is_compact_json_with_its_text_as_utf8() -> None:
    assert formats.encode({"a": 1, "b": ["é", None]}) == '{"a":1,"b":["é",null]}'.encode()


def test_a_standard_request_carries_its_id_timestamp_and_signature_over_the_body() -> None:
    event = {"type": "blocker.opened", "timestamp": "t", "data": {"text": "ü"}}
    headers, body = formats.standard_request(event, "msg_9", WHSEC, STAMP)
    assert body == formats.encode(event)
    assert headers == {
        "content-type": "application/json",
        "user-agent": "syncup-webhooks/1",
        "webhook-id": "msg_9",
        "webhook-timestamp": str(STAMP),
        "webhook-signature": sign(WHSEC, "msg_9", STAMP, body),
    }
    # What syncup sends, syncup's own receiver (and any Standard Webhooks one) accepts.
    assert sources.verify("standard", WHSEC, headers, body, NOW) == "msg_9"


def blocker_event(kind: str = "blocker.escalated", **blocker: object) -> dict[str, object]:
    shown: dict[str, object] = {
        "id": 41,
        "text": "the feature store is down",
        "area": {"id": 3, "name": "Payments"},
        "severity": "high",
        "status": "open",
        "reporter": {"id": "U1", "name": "Ana"},
        "waiting_on": {"kind": "member", "id": "U2", "name": "Bo"},
        "age_seconds": 90,
        "link": "https://chat/p/1",
    }
    shown.update(blocker)
    data = {
        "workspace": {"platform": "slack", "id": "T1", "name": "Acme"},
        "blocker": shown,
        "change": {"kind": "escalated", "actor": None, "detail": {"level": 2}},
    }
    return {"type": kind, "timestamp": "2026-12-07T09:00:00Z", "data": data}


def test_a_pagerduty_trigger_for_a_blocker_says_everything_about_it() -> None:
    event = blocker_event()
    assert formats.pagerduty_body(event, "R1", "msg_1") == {
        "routing_key": "R1",
        "event_action": "trigger",
        "dedup_key": "syncup-blocker-41",
        "links": [{"href": "https://chat/p/1", "text": "Where it was reported"}],
        "payload": {
            "summary": "Blocker #41 (Payments): the feature store is down",
            "source": "syncup Acme",
            "severity": "error",
            "timestamp": "2026-12-07T09:00:00Z",
            "component": "Payments",
            "group": "Acme",
            "class": "blocker.escalated",
            "custom_details": {
                "status": "open",
                "reporter": "Ana",
                "waiting_on": "Bo",
                "age_seconds": 90,
                "change": {"kind": "escalated", "actor": None, "detail": {"level": 2}},
            },
        },
    }


def test_a_pagerduty_trigger_for_a_blocker_without_area_link_or_people() -> None:
    event = blocker_event(area=None, link=None, reporter=None, waiting_on=None, severity="odd")
    event["data"]["workspace"] = {"id": "T1", "name": ""}  # type: ignore[index]
    body = formats.pagerduty_body(event, "R1", "msg_1")
    assert "links" not in body
    payload = body["payload"]
    assert payload["summary"] == "Blocker #41: the feature store is down"
    assert payload["component"] == "blockers" and "group" not in payload
    assert payload["source"] == "syncup T1" and payload["severity"] == "warning"
    details = payload["custom_details"]
    assert details["reporter"] is None and details["waiting_on"] is None
    for ours, theirs in (("critical", "critical"), ("normal", "warning"), ("low", "info")):
        shown = formats.pagerduty_body(blocker_event(severity=ours), "R", "m")
        assert shown["payload"]["severity"] == theirs


def test_a_pagerduty_summary_is_cut_to_1024_characters() -> None:
    body = formats.pagerduty_body(blocker_event(text="x" * 2000), "R1", "msg_1")
    summary = body["payload"]["summary"]
    assert len(summary) == 1024 and summary.startswith("Blocker #41 (Payments): xxx")


@pytest.mark.parametrize(
    ("kind", "action"),
    [
        ("blocker.acknowledged", "acknowledge"),
        ("blocker.resolved", "resolve"),
        ("blocker.cancelled", "resolve"),
    ],
)
def test_a_blocker_acknowledged_or_closed_acts_on_its_incident(kind: str, action: str) -> None:
    assert formats.pagerduty_body(blocker_event(kind), "R1", "msg_1") == {
        "routing_key": "R1",
        "event_action": action,
        "dedup_key": "syncup-blocker-41",
    }


def test_a_pagerduty_event_that_is_no_blocker_triggers_with_its_summary() -> None:
    test = {
        "type": "webhook.test",
        "data": {"workspace": {"id": "T1", "name": "Acme"}, "summary": "a test", "dedup_key": "k"},
    }
    assert formats.pagerduty_body(test, "R1", "msg_1") == {
        "routing_key": "R1",
        "event_action": "trigger",
        "dedup_key": "k",
        "payload": {"summary": "a test", "source": "syncup Acme", "severity": "info"},
    }
    resolve = {**test, "data": {**test["data"], "action": "resolve"}}  # type: ignore[dict-item]
    assert formats.pagerduty_body(resolve, "R1", "msg_1") == {
        "routing_key": "R1",
        "event_action": "resolve",
        "dedup_key": "k",
    }
    bare = formats.pagerduty_body({"type": "other.thing"}, "R1", "msg_7")
    assert bare["dedup_key"] == "syncup-msg_7"
    assert bare["payload"] == {"summary": "other.thing", "source": "syncup", "severity": "info"}
    # A blocker given without an id is not a blocker's incident.
    odd = {"type": "x", "data": {"blocker": {"text": "t"}, "dedup_key": "d"}}
    assert formats.pagerduty_dedup_key(odd, "msg_8") == "d"
    assert formats.pagerduty_dedup_key({"type": "x", "data": {"blocker": "41"}}, "m") == "syncup-m"


def test_the_signature_is_over_the_same_instant_whatever_the_hosts_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The package reads a naive time as UTC: a host in another zone must still sign the
    timestamp it sends (the specification's vector)."""
    vector = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    body = b'{"test": 2432232314}'
    try:
        for zone in ("Asia/Kolkata", "America/New_York"):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            assert sign(WHSEC, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == vector
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_blocker_that_is_not_an_object_is_no_blocker_for_pagerduty() -> None:
    event = {"type": "x.y", "data": {"blocker": "41", "summary": "plain"}}
    assert formats.pagerduty_body(event, "R1", "msg_1")["payload"] == {
        "summary": "plain",
        "source": "syncup",
        "severity": "info",
    }
