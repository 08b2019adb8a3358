"""Forms longer than a Discord modal: steps of at most five fields, partial values kept here.

A modal holds five fields and a modal submit cannot answer with another modal, so a longer form
(the standup setup has 13 fields) runs as steps: modal 1 -> submit -> a private "Continue (2/3)"
button -> modal 2 -> ... -> the last submit hands every value to the core at once. When the core
answers :class:`bot.chat.FormErrors`, the member gets the errors and a "Fix" button that reopens
only the fields in error, with what they typed.

Sessions live in this process's memory, keyed by a random token in the components' custom_id and
checked against the member: interactions of a guild always reach the process running its shard,
and DM interactions the one running shard 0. A form left open across a restart has to be opened
again (the command or button that opened it); nothing half-typed is ever saved.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from bot.chat import Form, FormField, SelectField
from bot.events import Actor

MODAL_FIELDS = 5
SESSION_SECONDS = 3600.0
MAX_SESSIONS = 10_000
MODAL_PREFIX = "~form:"
NEXT_PREFIX = "~next:"
FIX_PREFIX = "~fix:"


def steps_of(fields: list[FormField]) -> list[list[FormField]]:
    return [fields[i : i + MODAL_FIELDS] for i in range(0, len(fields), MODAL_FIELDS)] or [[]]


@dataclass
class FormSession:
    token: str
    form: Form
    user_id: str
    guild_id: str | None
    channel_id: str | None
    actor: Actor
    steps: list[list[FormField]]
    values: dict[str, str | list[str]] = field(default_factory=dict)
    created: float = field(default_factory=time.monotonic)

    def modal_id(self, step: int) -> str:
        return f"{MODAL_PREFIX}{self.token}:{step}"

    def title(self, step: int) -> str:
        title = self.form.title
        if len(self.steps) > 1:
            title = f"{title} ({step + 1}/{len(self.steps)})"
        return title

    def take(self, typed: dict[str, str | list[str]], step: int) -> None:
        """Keep what one modal carried, single selects as one value."""
        for form_field in self.steps[step]:
            if form_field.name not in typed:
                continue
            value = typed[form_field.name]
            if isinstance(form_field, SelectField) and not form_field.multiple:
                value = value[0] if isinstance(value, list) and value else (value or "")
            self.values[form_field.name] = value

    def fix(self, errors: dict[str, str]) -> None:
        """Next round: only the fields in error (all of them when none is named)."""
        wrong = [f for f in self.form.fields if f.name in errors]
        self.steps = steps_of(wrong or list(self.form.fields))


class FormSessions:
    def __init__(self, ttl: float = SESSION_SECONDS) -> None:
        self.ttl = ttl
        self._sessions: dict[str, FormSession] = {}

    def open(
        self, form: Form, actor: Actor, guild_id: str | None, channel_id: str | None
    ) -> FormSession:
        self._expire()
        session = FormSession(
            secrets.token_urlsafe(8),
            form,
            actor.user_id,
            guild_id,
            channel_id,
            actor,
            steps_of(list(form.fields)),
        )
        self._sessions[session.token] = session
        return session

    def get(self, token: str, user_id: str) -> FormSession | None:
        self._expire()
        session = self._sessions.get(token)
        if session is None or session.user_id != user_id:
            return None
        return session

    def close(self, token: str) -> None:
        self._sessions.pop(token, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items() if now - s.created > self.ttl]:
            del self._sessions[token]
        while len(self._sessions) > MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]


def parse_step_id(custom_id: str, prefix: str) -> tuple[str, int] | None:
    """``~form:<token>:<step>`` -> (token, step)."""
    if not custom_id.startswith(prefix):
        return None
    token, _, step = custom_id[len(prefix) :].partition(":")
    if not token:
        return None
    try:
        return token, int(step or 0)
    except ValueError:
        return None
