"""Shortcuts a test registers on the real core, the way features do (``Core.add_shortcut``):

- ``save_note`` "Save as note", on a message: opens a form pre-filled with the message's text
  and link; submitting it answers privately with what was saved.
- ``say_thanks`` "Say thanks", on a person: answers privately, naming them.
- ``thank_with_note`` "Thank with a note", on a person: opens a one-field form.

Every invocation and submission is kept, so a test can check what the adapter handed over and
that a repeated delivery was handled once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from bot.chat import Form, OpenForm, Reply, TextField, UserMention, reply, text
from bot.core import Context, Core, Shortcut
from bot.events import FormSubmission, ShortcutInvocation

SAVE_NOTE = Shortcut("save_note", "Save as note", on="message")
SAY_THANKS = Shortcut("say_thanks", "Say thanks", on="user")
THANK_WITH_NOTE = Shortcut("thank_with_note", "Thank with a note", on="user")
NOTE_FORM = "note_form"
THANKS_FORM = "thanks_form"
NOTE_MAX = 4000


@dataclass
class Recorded:
    invocations: list[ShortcutInvocation] = field(default_factory=list)
    submissions: list[FormSubmission] = field(default_factory=list)

    def of(self, shortcut_id: str) -> list[ShortcutInvocation]:
        return [i for i in self.invocations if i.shortcut_id == shortcut_id]


def register(core: Core) -> Recorded:
    recorded = Recorded()

    async def save_note(ctx: Context, event: ShortcutInvocation) -> OpenForm:
        recorded.invocations.append(event)
        fields = (
            TextField(
                "text", "Message", multiline=True, initial=event.message_text, max_length=NOTE_MAX
            ),
            TextField("link", "Link", required=False, initial=event.message_link, max_length=500),
        )
        author = event.message_author_id or ""
        return OpenForm(Form(NOTE_FORM, "Save as note", fields, state=author))

    async def note_saved(ctx: Context, event: FormSubmission) -> Reply:
        recorded.submissions.append(event)
        body = str(event.values.get("text", ""))
        return reply(f"Saved a note of {len(body)} characters.")

    async def say_thanks(ctx: Context, event: ShortcutInvocation) -> Reply:
        recorded.invocations.append(event)
        return reply(text("Thanks sent to ", UserMention(event.target_user_id or "")))

    async def thank_with_note(ctx: Context, event: ShortcutInvocation) -> OpenForm:
        recorded.invocations.append(event)
        fields = (TextField("why", "What for?", max_length=300),)
        return OpenForm(Form(THANKS_FORM, "Thank with a note", fields, "Send", state="x"))

    async def thanks_sent(ctx: Context, event: FormSubmission) -> Reply:
        recorded.submissions.append(event)
        return reply(f"Thanks sent: {event.values.get('why')}")

    core.add_shortcut(SAVE_NOTE, save_note)
    core.add_shortcut(SAY_THANKS, say_thanks)
    core.add_shortcut(THANK_WITH_NOTE, thank_with_note)
    core.add_form(NOTE_FORM, note_saved)
    core.add_form(THANKS_FORM, thanks_sent)
    return recorded


def in_features(monkeypatch: pytest.MonkeyPatch, *extra: Shortcut) -> None:
    """Make the bot's features register these shortcuts (as blockers and kudos will), for the
    commands that build the bot themselves (``syncup slack manifest``, ``syncup discord
    sync-commands``); ``extra`` ones answer nothing."""
    from bot.features import account

    original = account.register

    async def nothing(ctx: Context, event: ShortcutInvocation) -> None:
        return None

    def register_too(core: Core) -> None:
        original(core)
        register(core)
        for shortcut in extra:
            core.add_shortcut(shortcut, nothing)

    monkeypatch.setattr(account, "register", register_too)
