"""``/milestone hook ...`` (admins): the inbound webhooks that turn shipped work into posts.

``/milestone`` is registered here with only ``hook`` and ``help``: the milestones feature adds
its own subcommands (add, list, done ...) with ``Core.extend_command("milestone", ...)``.

- ``hook add SOURCE [NAME]``: a hook (github, gitlab, mlflow, standard); prints its URL and its
  secret once, privately.
- ``hook rule NAME EVENT #channel TEMPLATE [--branch B] [--labels a,b] [--environment E]
  [--model M] [--alias A] [--key K] [--value V] [--milestone "NAME"]``: a rule; the template's
  placeholders are checked against the event now, not when a delivery arrives.
- ``hook unrule NAME RULE``, ``hook list`` (rules and recent deliveries), ``hook test NAME``
  (each rule posts with example values), ``hook remove NAME``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from bot.chat import (
    Bold,
    ChannelMention,
    Code,
    Response,
    Section,
    Text,
    marked,
    message,
    reply,
    text,
)
from bot.commands import help as helptext
from bot.commands.parse import channel_ref, split_tokens
from bot.commands.spec import (
    CommandSpec,
    OptionSpec,
    OptionType,
    Permission,
    SubcommandSpec,
)
from bot.core import Context, Core
from bot.delivery.outbox import enqueue
from bot.directory import resolve_channel
from bot.errors import UserError
from bot.features.hooks import service, sources, templates
from bot.features.hooks.receiver import PREFIX, HookReceiver
from bot.port import Method, Target
from bot.webhooks.keys import Keys
from storage.hooks import Hook, HookRule

ACTIONS = ("add", "list", "rule", "unrule", "test", "remove")
FLAGS = ("branch", "labels", "environment", "model", "alias", "key", "value", "milestone")
_FLAG = re.compile(r"(?:^|\s)--(" + "|".join(FLAGS) + r')(?:=|\s+)("([^"]*)"|\S+)')
RULE_EXAMPLE = "/milestone hook rule ci release #launches Released $tag of $repo 🎉"

HOOK = SubcommandSpec(
    "hook",
    "Inbound webhooks: add SOURCE [NAME], rule, unrule, list, test, remove",
    (
        OptionSpec("action", OptionType.CHOICE, "what to do", choices=ACTIONS),
        OptionSpec(
            "hook",
            OptionType.STRING,
            "the hook's name (add: github|gitlab|mlflow|standard)",
            required=False,
        ),
        OptionSpec(
            "line",
            OptionType.TEXT,
            "add: NAME; rule: EVENT #channel TEMPLATE --options",
            required=False,
        ),
    ),
    permission=Permission.ADMIN,
    example="/milestone hook add github ci",
)
MILESTONE = CommandSpec(
    name="milestone",
    description="Milestones, and the webhooks (GitHub, GitLab, MLflow) that celebrate them.",
    subcommands=(HOOK, SubcommandSpec("help", "Explain the milestone commands.")),
)
SAMPLE = {
    "repo": "acme/shop",
    "tag": "v1.4.0",
    "name": "v1.4.0",
    "url": "https://example.com/x",
    "author": "octocat",
    "number": "42",
    "title": "Faster checkout",
    "branch": "main",
    "labels": "release",
    "environment": "production",
    "ref": "main",
    "model": "fraud-model",
    "version": "12",
    "alias": "champion",
    "key": "stage",
    "value": "approved",
    "source": "models:/fraud-model/12",
    "run_id": "abcd1234",
    "description": "example",
    "type": "deploy.finished",
    "timestamp": "2026-01-01T00:00:00Z",
}
MILESTONES_HELP = (
    'A milestone is a named date in the team\'s zone (`/milestone add "Launch v2" 2027-01-15 '
    "#launches --owner @bob`): its channel gets a countdown at 09:00 seven days and one day "
    "before (`--countdown 14,7,1` to choose), its owner a DM the day after if it is overdue, and "
    "`/milestone done NAME` (or a webhook rule) posts the celebration with a picture. "
    "docs/milestones.md has the dates syncup reads and who may change a milestone."
)
HELP = (
    "A hook is a URL a sender (GitHub, GitLab, MLflow, or any Standard Webhooks sender) posts "
    "to, signed with the hook's secret. Its rules turn one event into a post: `/milestone hook "
    "rule NAME EVENT #channel TEMPLATE`, where `$name` in the template is a value of the event "
    "(`$tag`, `$repo`, `$title` ...; `$$` is a dollar sign). Options filter: `--branch main`, "
    "`--labels release,hotfix`, `--environment production`, `--model NAME`, `--alias champion`; "
    '`--milestone "NAME"` marks that milestone done. docs/webhooks-inbound.md '
    "has each event's placeholders."
)


def parse_rule_line(line: str) -> tuple[str, str, str, dict[str, Any], str | None]:
    """EVENT, the channel, the template and the filters and milestone of a rule line."""
    flags: dict[str, str] = {}
    for match in _FLAG.finditer(line):
        flags[match.group(1)] = match.group(3) if match.group(3) is not None else match.group(2)
    rest = _FLAG.sub(" ", line)
    words, template = split_tokens(rest, 2)
    if len(words) < 2 or not template:
        raise UserError(f"A rule is EVENT #channel TEMPLATE, e.g. `{RULE_EXAMPLE}`.")
    milestone = flags.pop("milestone", None)
    filters: dict[str, Any] = dict(flags)
    if "labels" in filters:
        filters["labels"] = [x.strip() for x in filters["labels"].split(",") if x.strip()]
    return words[0], words[1], template, filters, milestone


def describe_rule(rule: HookRule) -> Text:
    extra = "".join(
        f" --{k} {','.join(v) if isinstance(v, list) else v}" for k, v in rule.filters.items()
    )
    done = f', marks "{rule.milestone}" done' if rule.milestone else ""
    return text(
        f"  rule {rule.id}: {rule.event}{extra} → ",
        ChannelMention(rule.channel_id),
        f"{done}: ",
        Code(rule.template[:200]),
    )


def handlers(keys: Keys, receiver: HookReceiver, base_url: Callable[[], str]) -> dict[str, Any]:
    def url(hook: Hook) -> str:
        return f"{base_url()}{PREFIX}/{hook.source}/{hook.token}"

    async def hook(ctx: Context, args: dict[str, Any]) -> Response:
        action, name, line = args["action"], args.get("hook"), (args.get("line") or "").strip()
        if action == "add":
            words = split_tokens(line)[0]
            if len(words) > 1:
                raise UserError("`/milestone hook add SOURCE [NAME]` takes one NAME.")
            added = await service.add_hook(
                ctx.session,
                ctx.workspace,
                ctx.member,
                name,
                words[0] if words else None,
                keys,
                ctx.now,
            )
            return _added(added, url(added.hook))
        if action == "list":
            return await _list(ctx)
        found = await service.hook_named(ctx.session, ctx.workspace.id, name)
        if action == "rule":
            event, raw_channel, template, filters, milestone = parse_rule_line(line)
            channel = await resolve_channel(
                ctx.session,
                ctx.workspace,
                channel_ref(raw_channel),
                ctx.core.directory,
                now=ctx.now,
                to_post=True,
            )
            rule = await service.add_rule(
                ctx.session,
                found,
                event=event,
                channel_id=channel.external_id,
                template=template,
                filters=filters,
                milestone=milestone,
                now=ctx.now,
            )
            ctx.after_commit(lambda: receiver.forget(found.source, found.token))
            return reply(
                text("Rule ", Bold(str(rule.id)), " added to ", Bold(found.name), ":"),
                describe_rule(rule),
                marked(f"Try it: `/milestone hook test {found.name}`."),
            )
        if action == "unrule":
            rule = await service.remove_rule(ctx.session, found, line or None)
            ctx.after_commit(lambda: receiver.forget(found.source, found.token))
            return reply(text(f"Rule {rule.id} of ", Bold(found.name), " removed."))
        if action == "test":
            return await _test(ctx, found)
        await ctx.session.delete(found)
        ctx.after_commit(lambda: receiver.forget(found.source, found.token))
        return reply(text("Hook ", Bold(found.name), " removed; its URL answers 404 from now."))

    async def _list(ctx: Context) -> Response:
        found = await service.hooks(ctx.session, ctx.workspace.id)
        if not found:
            return reply(marked("No hooks yet. Add one: `/milestone hook add github ci`."))
        lines: list[Text] = []
        for h in found:
            lines.append(text(Bold(h.name), f" ({h.source}): ", Code(url(h))))
            rules = await service.rules(ctx.session, h.id)
            lines.extend(describe_rule(r) for r in rules)
            if not rules:
                lines.append(marked(f"  no rules yet: `/milestone hook rule {h.name} ...`"))
            for d in await service.recent(ctx.session, h.id):
                when = d.received_at.strftime("%Y-%m-%d %H:%M")
                lines.append(
                    text(
                        f"  {when} UTC {d.event or '?'}: {d.outcome} ({d.reason}) id ",
                        Code(d.delivery_id[:40]),
                    )
                )
        return reply(*lines)

    async def _test(ctx: Context, found: Hook) -> Response:
        rules = await service.rules(ctx.session, found.id)
        if not rules:
            raise UserError(f"{found.name} has no rules to test: `{RULE_EXAMPLE}`.")
        run = uuid.uuid4().hex[:12]
        for rule in rules:
            fields = {
                n: SAMPLE.get(n.removeprefix("data."), n) for n in templates.names(rule.template)
            }
            shown = templates.render(rule.template, fields)
            await enqueue(
                ctx.session,
                workspace_id=ctx.workspace.id,
                method=Method.POST,
                target=Target(channel_id=rule.channel_id),
                message=message(text("(test) ") + shown, summary=shown.plain()[:150]),
                key=f"hook:{found.id}:test-{run}:{rule.id}",
                now=ctx.now,
            )
        ctx.sent_something = True
        await service.record(
            ctx.session,
            found.id,
            f"test-{run}",
            "test",
            "test",
            f"{len(rules)} example post(s) queued; milestones not touched",
            ctx.now,
        )
        return reply(text(f"{len(rules)} example post(s) on their way for ", Bold(found.name), "."))

    return {"hook": hook}


def _added(added: service.Added, where: str) -> Response:
    hook = added.hook
    how = {
        "github": "GitHub: Settings → Webhooks → Payload URL, content type application/json, "
        "Secret",
        "gitlab": "GitLab: Settings → Webhooks → URL, Secret token",
        "mlflow": "MLflow: `MlflowClient().create_webhook(url=..., secret=..., events=[...])`",
        "standard": "the sender's Standard Webhooks settings (a whsec_ secret)",
    }[hook.source]
    return reply(
        text("Hook ", Bold(hook.name), f" ({hook.source}) added. Its URL: ", Code(where)),
        text("Its secret, shown only this once: ", Code(added.secret)),
        marked(f"Give both to {how}. Then add a rule: `/milestone hook rule {hook.name} ...`."),
    )


def register(core: Core, keys: Keys, receiver: HookReceiver, base_url: Callable[[], str]) -> None:
    async def show_help(ctx: Context, args: dict[str, Any]) -> Response:
        blocks = list(helptext.topic(core.specs.values(), "milestone").blocks)
        blocks += [Section(marked(MILESTONES_HELP)), Section(marked(HELP))]
        events = "; ".join(f"{s}: {', '.join(sources.events(s))}" for s in sources.PLACEHOLDERS)
        blocks.append(Section(text(f"Events: {events}; standard: any type.")))
        return reply(*blocks)

    core.add_command(MILESTONE, {"help": show_help, **handlers(keys, receiver, base_url)})
