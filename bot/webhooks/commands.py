"""``/raci webhook add|list|test|remove`` (admins), added to H3's ``/raci`` with
``Core.extend_command``.

On a typed line (Slack, the console) the options are positional: ``add NAME URL [--format
standard|pagerduty] [--events opened,acknowledged,...]``; on Discord they are typed options
(ACTION, NAME, URL, and the flags in OPTIONS).
"""

from __future__ import annotations

from typing import Any

from bot.chat import Bold, Code, Response, Text, marked, reply, text
from bot.commands.parse import split_tokens
from bot.commands.spec import OptionSpec, OptionType, Permission, SubcommandSpec
from bot.config import WebhooksSection
from bot.core import CommandHandler, Context
from bot.errors import UserError
from bot.webhooks import service
from bot.webhooks.keys import Keys
from bot.webhooks.targets import Resolver
from storage.webhooks import WebhookEndpoint, WebhookFormat

ACTIONS = ("add", "list", "test", "remove", "disable", "enable")
FLAGS = ("format", "events")

WEBHOOK = SubcommandSpec(
    "webhook",
    "Outbound webhooks: add NAME URL [--format] [--events], list, test, remove, disable, enable",
    (
        OptionSpec("action", OptionType.CHOICE, "what to do", choices=ACTIONS),
        OptionSpec("name", OptionType.STRING, "the webhook's name", required=False),
        OptionSpec(
            "url", OptionType.STRING, "https URL (PagerDuty: the routing key)", required=False
        ),
        OptionSpec(
            "options",
            OptionType.TEXT,
            "--format standard|pagerduty --events opened,acknowledged,escalated,resolved",
            required=False,
        ),
    ),
    permission=Permission.ADMIN,
    example="/raci webhook add ops https://hooks.example.com/syncup --events opened,resolved",
)


def parse_flags(url: str | None, rest: str | None) -> tuple[str | None, dict[str, str]]:
    """The one positional word (URL or routing key) and ``--flag value`` pairs, in any
    order; ``--flag=value`` works too."""
    words = ([url] if url else []) + split_tokens(rest or "")[0]
    positional: list[str] = []
    flags: dict[str, str] = {}
    pending: str | None = None
    for word in words:
        if pending is not None:
            flags[pending] = flags.get(pending, "") + word
            if not word.endswith(","):  # "--events opened, resolved" goes on after a comma
                pending = None
            continue
        if word.startswith("--"):
            name, eq, value = word[2:].partition("=")
            name = name.lower()
            if name not in FLAGS:
                raise UserError(f'Unknown option "--{name}"; use --format or --events.')
            flags[name] = value
            if not eq or value.endswith(","):
                pending = name
            continue
        positional.append(word)
    if pending is not None and not flags[pending].rstrip(","):
        raise UserError(f"--{pending} needs a value, e.g. `--{pending} {_example(pending)}`.")
    if len(positional) > 1:
        raise UserError(f'I did not expect "{" ".join(positional[1:])}" after the URL.')
    return (positional[0] if positional else None), flags


def _example(flag: str) -> str:
    return "pagerduty" if flag == "format" else "opened,resolved"


def _events(endpoint: WebhookEndpoint) -> str:
    return ", ".join(e.split(".", 1)[1] if e.startswith("blocker.") else e for e in endpoint.events)


def describe(endpoint: WebhookEndpoint) -> Text:
    where = "PagerDuty" if endpoint.format == WebhookFormat.PAGERDUTY else endpoint.url
    state = " (disabled)" if endpoint.disabled else ""
    return text(
        Bold(endpoint.name),
        f" (id {endpoint.id}, {endpoint.format}){state}: {where}; events: {_events(endpoint)}",
    )


def handlers(
    settings: WebhooksSection, keys: Keys, resolver: Resolver
) -> dict[str, CommandHandler]:
    async def webhook(ctx: Context, args: dict[str, Any]) -> Response:
        action = args["action"]
        target, flags = parse_flags(args.get("url"), args.get("options"))
        if action != "add" and (target or flags):
            raise UserError(f"`/raci webhook {action}` takes only a NAME.")
        if action == "add":
            return await _add(ctx, args.get("name"), target, flags)
        if action == "list":
            if args.get("name"):
                raise UserError("`/raci webhook list` takes no NAME.")
            return await _list(ctx)
        if action == "test":
            endpoint, reference = await service.send_test(
                ctx.session, ctx.workspace, ctx.member, args.get("name"), ctx.now
            )
            ctx.sent_something = True
            return reply(
                text(
                    "A test event is on its way to ",
                    Bold(endpoint.name),
                    f" (reference {reference}). If it fails, ",
                    Code("syncup outbox list --status dead"),
                    " says why.",
                )
            )
        if action in ("disable", "enable"):
            endpoint = await service.set_disabled(
                ctx.session, ctx.workspace.id, args.get("name"), disabled=action == "disable"
            )
            if endpoint.disabled:
                return reply(
                    text(
                        "Webhook ",
                        Bold(endpoint.name),
                        " disabled: it gets no new events, and those still queued for it are "
                        "dead-lettered. ",
                        Code(f"/raci webhook enable {endpoint.name}"),
                        " turns it back on.",
                    )
                )
            return reply(text("Webhook ", Bold(endpoint.name), " enabled."))
        endpoint = await service.remove(ctx.session, ctx.workspace.id, args.get("name"))
        return reply(text("Webhook ", Bold(endpoint.name), " removed; it gets nothing more."))

    async def _add(
        ctx: Context, name: str | None, target: str | None, flags: dict[str, str]
    ) -> Response:
        fmt = flags.get("format", WebhookFormat.STANDARD).lower()
        added = await service.add(
            ctx.session,
            workspace=ctx.workspace,
            member=ctx.member,
            name=name,
            target=target,
            fmt=fmt,
            events=flags.get("events"),
            settings=settings,
            keys=keys,
            resolver=resolver,
            now=ctx.now,
        )
        endpoint = added.endpoint
        lines = [
            text(
                "Webhook ",
                Bold(endpoint.name),
                f" added (id {endpoint.id}, {endpoint.format}); events: {_events(endpoint)}. "
                "An escalation level can name it as ",
                Code(f"webhook:{endpoint.id}"),
                ".",
            )
        ]
        if added.secret is not None:
            lines.append(
                text(
                    "Its signing secret, shown only this once: ",
                    Code(added.secret),
                    " Keep it in the receiver to check ",
                    Code("webhook-signature"),
                    " (docs/webhooks.md).",
                )
            )
        else:
            lines.append(
                marked("The routing key is stored encrypted. Try it: `/raci webhook test`.")
            )
        return reply(*lines)

    async def _list(ctx: Context) -> Response:
        found = await service.endpoints(ctx.session, ctx.workspace.id)
        if not found:
            return reply(marked("No webhooks yet. Add one: `/raci webhook add NAME URL`."))
        return reply(*(describe(endpoint) for endpoint in found))

    return {"webhook": webhook}
