"""A modal submission within Slack's 3 seconds, however slow the platform is.

Slack wants the answer to a ``view_submission`` (field errors, the next view, or closing the
modal) within 3 seconds, and a setup form may have to look people and channels up first. So the
core's work is raced: the submission is answered with the core's own outcome only when it comes
before the first platform look-up starts (:data:`adapters.slack.directory.LOOKING_UP`) and
before :data:`ACK_SECONDS`. Otherwise the modal is answered at once with a "Checking…" view
(``response_action: update``, no submit button, so it cannot be sent twice) and, when the core is
done, :func:`outcome_view` replaces it through views.update: the form again with what was typed
and each error under its field, the next form, or the result. The core decides once: the member
sees either the errors or the result, never an error followed by a standup created anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from adapters.slack import render
from adapters.slack.directory import LOOKING_UP
from bot.chat import FormErrors, Message, OpenForm, Reply, Response, message

ACK_SECONDS = 2.0
CHECKING = "syncup-checking"
DONE = "syncup-done"
# What views.update takes of a view (the rest is Slack's: id, hash, state, team_id, ...).
VIEW_KEYS = ("type", "title", "blocks", "close", "submit", "private_metadata", "callback_id")
T = TypeVar("T")


async def race(work: Awaitable[T], deadline: float = ACK_SECONDS) -> tuple[asyncio.Task[T], bool]:
    """Start ``work``; wait until it is done, starts a platform look-up, or ``deadline`` passes.
    Returns its task and whether it is done."""
    started = asyncio.Event()
    token = LOOKING_UP.set(started)
    try:
        task = asyncio.ensure_future(work)  # copies the context, with the event
    finally:
        LOOKING_UP.reset(token)
    waiter = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return task, task.done()


def _base(view: dict[str, Any]) -> dict[str, Any]:
    return {k: view[k] for k in VIEW_KEYS if k in view}


def checking_view(view: dict[str, Any]) -> dict[str, Any]:
    """What the modal shows while the core works: the same title, no submit button."""
    return {
        "type": "modal",
        "callback_id": CHECKING,
        "title": view.get("title") or {"type": "plain_text", "text": "syncup"},
        "close": {"type": "plain_text", "text": "Close"},
        "private_metadata": str(view.get("private_metadata", "")),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": ":hourglass_flowing_sand: Checking names with Slack\u2026 "
                    "this takes a few seconds.",
                },
            }
        ],
    }


def errors_view(view: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """The submitted form again, with what was typed and chosen, each error under its field
    (as the input's hint) and a line at the top; an error about no field goes to the first."""
    by_block = render.form_errors(view, errors)
    state = (view.get("state") or {}).get("values") or {}
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": ":warning: *Please fix the fields marked below.*"},
        }
    ]
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            blocks.append(block)
            continue
        block = dict(block)
        element = dict(block["element"])
        typed = (state.get(block.get("block_id")) or {}).get(element.get("action_id")) or {}
        _keep_typed(element, typed)
        block["element"] = element
        problem = by_block.get(block.get("block_id", ""))
        if problem:
            block["hint"] = {
                "type": "plain_text",
                "text": render.shorten(f"\u26a0 {problem}", render.MAX_LABEL),
            }
        else:
            block.pop("hint", None)
        blocks.append(block)
    return {**_base(view), "blocks": blocks[: render.MAX_MODAL_BLOCKS]}


def _keep_typed(element: dict[str, Any], typed: dict[str, Any]) -> None:
    kind = element.get("type")
    if kind == "plain_text_input":
        value = typed.get("value")
        if value:
            element["initial_value"] = value
        else:
            element.pop("initial_value", None)
    elif kind == "multi_static_select":
        chosen = typed.get("selected_options") or []
        if chosen:
            element["initial_options"] = chosen
        else:
            element.pop("initial_options", None)
    elif kind == "static_select":
        one = typed.get("selected_option")
        if one:
            element["initial_option"] = one
        else:
            element.pop("initial_option", None)


def result_view(view: dict[str, Any], msg: Message) -> dict[str, Any]:
    """The outcome shown in the modal, with a Close button."""
    blocks = render.messages(msg)[0].blocks[: render.MAX_MODAL_BLOCKS]
    return {
        "type": "modal",
        "callback_id": DONE,
        "title": view.get("title") or {"type": "plain_text", "text": "syncup"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
    }


def outcome_view(
    view: dict[str, Any], response: Response, channel_id: str | None
) -> dict[str, Any]:
    """What replaces the "Checking…" view once the core has answered."""
    if isinstance(response, FormErrors):
        return errors_view(view, response.errors)
    if isinstance(response, OpenForm):
        return render.modal(response.form, channel_id)
    if isinstance(response, Reply):
        return result_view(view, response.message)
    return result_view(view, message("Saved."))
