"""What benchmarks/scale_day.py counts at the fake Slack: every call as it is answered, sorted
into prompts, reminders, report replies and poll messages by who and what they are for, so that
duplicates and losses are counted where Slack would see them."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.slack.harness import text_of
from tests.fakes.slack.server import Call

PROMPT_MARK = "What did you do since last time?"


@dataclass
class Post:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    at: float


@dataclass
class Tally:
    prompts: dict[str, list[Post]] = field(default_factory=lambda: defaultdict(list))
    other_dms: dict[str, list[Post]] = field(default_factory=lambda: defaultdict(list))
    channel_posts: dict[str, list[Post]] = field(default_factory=lambda: defaultdict(list))
    answered: Counter[str] = field(default_factory=Counter)
    rate_limited: Counter[str] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)
    views: dict[str, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    on_prompt: list[Any] = field(default_factory=list)
    post_times: list[float] = field(default_factory=list)
    dm_kinds: Counter[str] = field(default_factory=Counter)
    limited_where: Counter[str] = field(default_factory=Counter)

    def dump(self) -> str:
        """What was counted, as JSON (kept when the figures could not be printed)."""
        import json

        return json.dumps(
            {
                "prompts": {u: len(p) for u, p in self.prompts.items()},
                "other_dms": {u: [p.text[:200] for p in ps] for u, ps in self.other_dms.items()},
                "channel_posts": {
                    c: [p.text[:200] for p in ps] for c, ps in self.channel_posts.items()
                },
                "answered": self.answered,
                "rate_limited": self.rate_limited,
                "served": self.served,
            }
        )

    def view_for(self, trigger: str) -> asyncio.Future[dict[str, Any]]:
        future = self.views.get(trigger)
        if future is None:
            future = self.views[trigger] = asyncio.get_running_loop().create_future()
        return future

    def listen(self, call: Call) -> None:
        if call.status == 429:
            self.rate_limited[call.method] += 1
            if call.method == "chat.postMessage":
                where = str(call.args.get("channel", ""))
                self.limited_where["DM" if where.startswith(("D", "U")) else "channel"] += 1
            return
        if not call.response.get("ok"):
            return
        self.served[call.method] += 1
        if call.method == "views.open":
            view = call.response["view"]
            future = self.view_for(view["trigger_id"])
            if not future.done():
                future.set_result(view)
            return
        if call.method != "chat.postMessage":
            return
        now = time.monotonic()
        self.post_times.append(now)
        blocks = call.args.get("blocks") or []
        post = Post(
            call.response["channel"],
            call.response["ts"],
            text_of(blocks, call.args.get("text", "")),
            blocks,
            now,
        )
        if post.channel.startswith("D"):
            user = post.channel[1:]
            if PROMPT_MARK in post.text and _has_button(blocks, "Answer"):
                self.prompts[user].append(post)
                for callback in self.on_prompt:
                    callback(user, post)
            else:
                self.other_dms[user].append(post)
                self.dm_kinds[" ".join(post.text.split()[:6])] += 1
        else:
            self.channel_posts[post.channel].append(post)


def _has_button(blocks: list[dict[str, Any]], label: str) -> bool:
    return find_button(blocks, label) is not None


def find_button(blocks: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    for block in blocks:
        if block.get("type") != "actions":
            continue
        for element in block.get("elements", []):
            if element.get("type") == "button" and element["text"]["text"].startswith(label):
                return element  # type: ignore[no-any-return]
    return None


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def counted(expected: dict[str, int], seen: dict[str, int]) -> tuple[int, int]:
    """(duplicates, losses): sends beyond the expected number, and expected ones missing."""
    duplicates = sum(max(0, seen.get(key, 0) - n) for key, n in expected.items())
    duplicates += sum(n for key, n in seen.items() if key not in expected)
    losses = sum(max(0, n - seen.get(key, 0)) for key, n in expected.items())
    return duplicates, losses
