"""Escalation policies: who is told about an unanswered blocker, and after how long.

A policy is JSON (stored on ``raci_areas.policy``, or the workspace default on
``blocker_settings.default_policy``)::

    {"levels": [{"target": "responsible", "after": "4h"},
                {"target": "accountable", "after": "1d"},
                {"target": "channel", "after": "2d"}],
     "repeat": 0, "reack": "1d"}

* ``target``: ``responsible`` / ``accountable`` (the area's R or A), ``channel`` (the area's
  channel), ``member:<members.id>``, ``channel:<platform channel id>``, ``webhook:<endpoint id>``.
* ``after``: business time since the blocker opened (or since its ladder restarted), written as
  minutes, hours and business days: ``30m``, ``4h``, ``1d``, ``1d 4h``. A business day is the
  area's working day (8 hours for 09:00-17:00).
* ``repeat``: how many more times the whole ladder runs after its last level (0-5).
* ``reack``: how long an acknowledgement pauses escalation before the ladder starts again.

Rules, with the reasons:

* at least one level and at most :data:`MAX_LEVELS`;
* no negative delay; the first level may be ``0m`` (at once);
* each level strictly later than the one before: after downtime only the highest due level
  fires, so two levels at the same time would silently drop the first one;
* ``reack`` is more than zero (a zero pause would be no pause).

Severity changes the ladder (:func:`effective_levels`): a **critical** blocker starts at the
second level at once (the gaps between later levels are kept) and counts wall-clock time; a
**low** one never goes past the first level.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.errors import UserError
from storage.models import BlockerSeverity

MAX_LEVELS = 10
MAX_REPEAT = 5
ROLE_TARGETS = ("responsible", "accountable", "channel")
PREFIXED_TARGETS = ("member", "channel", "webhook")
STANDARD_DAY = timedelta(hours=8)

_PART = re.compile(r"(\d+)\s*([dhm])")
_DELAY = re.compile(r"^\s*(?:\d+\s*[dhm]\s*)+$")


class PolicyError(UserError):
    """A policy that cannot be used, with what to fix."""


@dataclass(frozen=True, order=True)
class Delay:
    """Business days and minutes (kept apart: a day is as long as the area's working day)."""

    days: int = 0
    minutes: int = 0

    def business(self, day_length: timedelta) -> timedelta:
        return self.days * day_length + timedelta(minutes=self.minutes)

    def __str__(self) -> str:
        parts = []
        if self.days:
            parts.append(f"{self.days}d")
        hours, minutes = divmod(self.minutes, 60)
        if hours:
            parts.append(f"{hours}h")
        if minutes or not parts:
            parts.append(f"{minutes}m")
        return " ".join(parts)

    def words(self) -> str:
        """ "4 business hours", "1 business day 30 minutes"."""
        parts = []
        if self.days:
            parts.append(_plural(self.days, "business day"))
        hours, minutes = divmod(self.minutes, 60)
        if hours:
            parts.append(_plural(hours, "business hour" if not self.days else "hour"))
        if minutes or not parts:
            parts.append(_plural(minutes, "minute"))
        return " ".join(parts)


def parse_delay(raw: object, what: str) -> Delay:
    """``"4h"``, ``"30m"``, ``"1d"``, ``"1d 4h"``; a negative or malformed one is refused."""
    value = str(raw).strip().lower() if raw is not None else ""
    if value.startswith("-"):
        raise PolicyError(f'{what}: "{raw}" is negative; a delay is 0m or more, e.g. 4h')
    if not _DELAY.match(value):
        raise PolicyError(
            f'{what}: "{raw}" is not a delay; write minutes, hours or business days '
            "such as 30m, 4h, 1d or 1d 4h"
        )
    days = minutes = 0
    for number, unit in _PART.findall(value):
        n = int(number)
        if unit == "d":
            days += n
        else:
            minutes += n * 60 if unit == "h" else n
    if days > 365 or minutes > 365 * 24 * 60:
        raise PolicyError(f'{what}: "{raw}" is more than a year')
    return Delay(days, minutes)


@dataclass(frozen=True)
class Level:
    target: str
    after: Delay

    @property
    def kind(self) -> str:
        """``responsible``, ``accountable``, ``channel`` (the area's), ``member``,
        ``channel_id`` (a named channel) or ``webhook``."""
        if self.target in ROLE_TARGETS:
            return self.target
        prefix = self.target.split(":", 1)[0]
        return "channel_id" if prefix == "channel" else prefix

    @property
    def ref(self) -> str:
        """What follows the prefix: the member or webhook id, or the platform channel id."""
        return self.target.split(":", 1)[1] if ":" in self.target else ""

    def describe(self) -> str:
        names = {
            "responsible": "the area's Responsible",
            "accountable": "the area's Accountable",
            "channel": "the area's channel",
            "member": f"member #{self.ref}",
            "channel_id": f"channel {self.ref}",
            "webhook": f"webhook #{self.ref}",
        }
        return names[self.kind]


@dataclass(frozen=True)
class Policy:
    levels: tuple[Level, ...]
    repeat: int = 0
    reack: Delay = Delay(days=1)

    def to_json(self) -> dict[str, Any]:
        return {
            "levels": [{"target": lv.target, "after": str(lv.after)} for lv in self.levels],
            "repeat": self.repeat,
            "reack": str(self.reack),
        }

    def to_lines(self) -> str:
        """The editable text of the form: one ``TARGET AFTER`` per line."""
        return "\n".join(f"{lv.target} {lv.after}" for lv in self.levels)

    def describe(self) -> list[str]:
        """Human lines: "1. after 4 business hours: the area's Responsible"."""
        lines = [
            f"{n}. after {lv.after.words()}: {lv.describe()}" for n, lv in enumerate(self.levels, 1)
        ]
        if self.repeat:
            lines.append(f"Then the ladder runs again, {_plural(self.repeat, 'more time')}.")
        lines.append(f"An acknowledgement pauses escalation for {self.reack.words()}.")
        return lines


DEFAULT_POLICY = Policy(
    levels=(
        Level("responsible", Delay(minutes=4 * 60)),
        Level("accountable", Delay(days=1)),
        Level("channel", Delay(days=2)),
    ),
    repeat=0,
    reack=Delay(days=1),
)


def parse_target(raw: object, where: str) -> str:
    value = str(raw or "").strip()
    folded = value.lower()
    if folded in ROLE_TARGETS:
        return folded
    prefix, _, ref = value.partition(":")
    prefix = prefix.lower()
    if prefix in PREFIXED_TARGETS and ref.strip():
        ref = ref.strip()
        if prefix in ("member", "webhook") and not ref.isdigit():
            raise PolicyError(f'{where}: "{value}" needs a number after "{prefix}:"')
        return f"{prefix}:{ref}"
    raise PolicyError(
        f'{where}: unknown target "{value}"; use responsible, accountable, channel, '
        "member:<id>, channel:<channel id> or webhook:<id>"
    )


def parse(data: Mapping[str, Any] | None, *, day_length: timedelta = STANDARD_DAY) -> Policy:
    """A policy from its JSON; None is the default. ``day_length`` (the area's working day)
    orders levels given in days and hours."""
    if data is None:
        return DEFAULT_POLICY
    if not isinstance(data, Mapping):
        raise PolicyError("A policy is an object with levels, repeat and reack")
    unknown = set(data) - {"levels", "repeat", "reack"}
    if unknown:
        raise PolicyError(f"Unknown policy field(s): {', '.join(sorted(unknown))}")
    raw_levels = data.get("levels")
    if not isinstance(raw_levels, Sequence) or isinstance(raw_levels, str) or not raw_levels:
        raise PolicyError("A policy needs at least one level (a target and a delay)")
    levels = []
    for n, raw in enumerate(raw_levels, 1):
        if not isinstance(raw, Mapping) or set(raw) - {"target", "after"}:
            raise PolicyError(f"Level {n}: give a target and an after, nothing else")
        levels.append(
            Level(
                parse_target(raw.get("target"), f"Level {n}"),
                parse_delay(raw.get("after"), f"Level {n}"),
            )
        )
    return _checked(levels, data.get("repeat", 0), data.get("reack", "1d"), day_length)


def parse_lines(
    levels_text: str, repeat: object, reack: object, *, day_length: timedelta = STANDARD_DAY
) -> Policy:
    """A policy from the form: one ``TARGET AFTER`` per line (``accountable 1d``)."""
    levels = []
    for n, line in enumerate((ln for ln in levels_text.splitlines() if ln.strip()), 1):
        target, _, after = line.strip().partition(" ")
        if not after.strip():
            raise PolicyError(
                f'Line {n}: "{line.strip()}" needs a target and a delay, e.g. responsible 4h'
            )
        levels.append(Level(parse_target(target, f"Line {n}"), parse_delay(after, f"Line {n}")))
    if not levels:
        raise PolicyError("A policy needs at least one level, e.g. responsible 4h")
    return _checked(levels, repeat, reack, day_length)


def _checked(levels: list[Level], repeat: object, reack: object, day_length: timedelta) -> Policy:
    if len(levels) > MAX_LEVELS:
        raise PolicyError(f"A policy has at most {MAX_LEVELS} levels ({len(levels)} given)")
    for n in range(1, len(levels)):
        before, level = levels[n - 1], levels[n]
        if level.after.business(day_length) <= before.after.business(day_length):
            raise PolicyError(
                f"Level {n + 1} ({level.after}) must come after level {n} ({before.after}): "
                "each delay counts from the start and must be longer than the one before"
            )
    try:
        rounds = int(str(repeat).strip() or "0")
    except ValueError:
        raise PolicyError(f'Repeat: "{repeat}" is not a whole number (0 to {MAX_REPEAT})') from None
    if not 0 <= rounds <= MAX_REPEAT:
        raise PolicyError(f"Repeat: {rounds} is out of range; use 0 to {MAX_REPEAT}")
    pause = parse_delay(reack if str(reack).strip() else "1d", "Re-escalate after acknowledgement")
    if pause.business(day_length) <= timedelta(0):
        raise PolicyError("Re-escalate after acknowledgement: give a delay above zero, e.g. 1d")
    return Policy(tuple(levels), rounds, pause)


def effective_levels(policy: Policy, severity: BlockerSeverity | str) -> list[tuple[int, Level]]:
    """The levels a blocker of ``severity`` goes through, with their 1-based numbers in the
    policy: critical starts at the second level, low stops after the first."""
    numbered = list(enumerate(policy.levels, 1))
    if severity == BlockerSeverity.CRITICAL and len(numbered) > 1:
        return numbered[1:]
    if severity == BlockerSeverity.LOW:
        return numbered[:1]
    return numbered


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
