"""Help text, generated from the command specs so it can never drift from what is parsed."""

from __future__ import annotations

from collections.abc import Iterable

from bot.chat import Bold, Code, Context, Header, Message, Section, message, text
from bot.commands.spec import CommandSpec, Permission, SubcommandSpec
from bot.errors import UserError


def _line(spec: CommandSpec, sub: SubcommandSpec) -> Section:
    who = "" if sub.permission is Permission.MEMBER else f" ({sub.permission.label} only)"
    return Section(text(Code(spec.usage(sub)), f"  {sub.description}{who}"))


def overview(specs: Iterable[CommandSpec]) -> Message:
    blocks: list = [Header("syncup commands")]
    for spec in specs:
        blocks.append(Section(text(Bold(f"/{spec.name}"), f": {spec.description}")))
        blocks.extend(_line(spec, sub) for sub in spec.subcommands)
    blocks.append(Context(text("Details of one: ", Code("/syncup help timezone"))))
    return message(*blocks, summary="syncup commands")


def topic(specs: Iterable[CommandSpec], name: str) -> Message:
    """Help for ``standup``, ``syncup timezone`` or a bare subcommand name like ``timezone``."""
    specs = list(specs)
    words = name.lower().lstrip("/").split()
    for spec in specs:
        if words[0] == spec.name:
            if len(words) == 1:
                return message(
                    Header(f"/{spec.name}"),
                    spec.description,
                    *(_line(spec, s) for s in spec.subcommands),
                )
            sub = spec.subcommand(words[1])
            if sub is not None:
                return _detail(spec, sub)
    for spec in specs:
        sub = spec.subcommand(words[-1])
        if sub is not None:
            return _detail(spec, sub)
    known = ", ".join(f"/{s.name}" for s in specs)
    raise UserError(f'No help on "{name}". Commands: {known}. Type `/syncup help` for all.')


def _detail(spec: CommandSpec, sub: SubcommandSpec) -> Message:
    blocks: list = [Header(f"/{spec.name} {sub.name}"), Section(text(sub.description))]
    blocks.append(Section(text("Usage: ", Code(spec.usage(sub)))))
    for option in sub.options:
        need = "" if option.required else " (optional)"
        blocks.append(Section(text(Code(option.name.upper()), f"{need}: {option.description}")))
    if sub.example:
        blocks.append(Section(text("Example: ", Code(sub.example))))
    if spec.default == sub.name:
        blocks.append(
            Context(
                text(
                    "The default: ",
                    Code(f"/{spec.name}"),
                    f" followed by anything but a subcommand's name runs {sub.name}.",
                )
            )
        )
    if sub.permission is not Permission.MEMBER:
        blocks.append(Context(text(f"Only {sub.permission.label} can run this.")))
    return message(*blocks, summary=f"/{spec.name} {sub.name}")
