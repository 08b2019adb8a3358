"""Forms on the console: asked field by field, submitted to the core, fields in error asked
again with the reason, follow-up forms filled in turn."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from adapters.console.input_lines import LineReader
from adapters.console.render import Renderer
from adapters.console.terminal import Terminal
from bot.chat import Form, FormErrors, FormField, OpenForm, Response, SelectField, TextField

Values = dict[str, str | list[str]]
Submit = Callable[[Form, Values], Awaitable[Response]]


class FormClosed(Exception):
    """The form was closed (``/cancel``) or input ended while filling it in."""


class BadChoice(Exception):
    pass


class FormFiller:
    """``commands`` names the slash commands (the console's and the bot's) that are refused
    as answers: ``/as chandra`` typed into a form is a mistake, not an answer."""

    def __init__(
        self,
        reader: LineReader,
        terminal: Terminal,
        renderer: Renderer,
        commands: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self.reader = reader
        self.terminal = terminal
        self.renderer = renderer
        self.commands = commands

    async def fill(self, form: Form, submit: Submit) -> Response:
        """Fill ``form`` in and submit it until the core accepts it; the core's last answer.
        Raises :class:`FormClosed` when the member closes it or input ends."""
        values: Values = {}
        todo: list[FormField] = list(form.fields)
        errors: dict[str, str] = {}
        self.terminal.say(*self.renderer.form_title(form))
        while True:
            for form_field in todo:
                if form_field.name in errors:
                    self.terminal.say(f"  ! {errors[form_field.name]}")
                values[form_field.name] = await self.ask(form_field)
            response = await submit(form, dict(values))
            if isinstance(response, FormErrors):
                names = {f.name for f in form.fields}
                errors = dict(response.errors)
                elsewhere = [m for name, m in errors.items() if name not in names]
                if elsewhere:
                    self.terminal.say(*(f"  ! {message}" for message in elsewhere))
                todo = [f for f in form.fields if f.name in errors] or list(form.fields)
                continue
            if isinstance(response, OpenForm):
                form = response.form
                values, errors, todo = {}, {}, list(form.fields)
                self.terminal.say(*self.renderer.form_title(form))
                continue
            return response

    def _command(self, answer: str) -> str | None:
        """The command typed in place of an answer (``/as``), if it is one."""
        if not answer.startswith("/"):
            return None
        word = answer[1:].split(maxsplit=1)[0].lower() if answer[1:].strip() else ""
        return f"/{word}" if word in self.commands() else None

    async def ask(self, form_field: FormField) -> str | list[str]:
        renderer = self.renderer
        prompt = renderer.field_prompt(form_field)
        if isinstance(form_field, SelectField):
            self.terminal.say(*renderer.field_options(form_field))
        while True:
            line = await self.reader.read(prompt, blank=True)
            if line is None or line.strip().lower() == "/cancel":
                raise FormClosed
            answer = line.strip()
            command = self._command(answer)
            if command is not None:
                self.terminal.say(
                    f"  {command} is not an answer: finish this form first (or type /cancel "
                    f"to close it), then type {command} again."
                )
                continue
            if not answer:
                kept = initial_value(form_field)
                if kept is not None:
                    return kept
                if not form_field.required:
                    return [] if isinstance(form_field, SelectField) and form_field.multiple else ""
                self.terminal.say("  This field is required; answer it, or type /cancel.")
                continue
            if isinstance(form_field, TextField):
                if len(answer) > form_field.max_length:
                    self.terminal.say(
                        f"  At most {form_field.max_length} characters, please "
                        f"({len(answer)} given)."
                    )
                    continue
                return answer
            try:
                return choose(form_field, answer)
            except BadChoice as exc:
                self.terminal.say(f"  {exc}")


def initial_value(form_field: FormField) -> str | list[str] | None:
    if isinstance(form_field, TextField):
        return form_field.initial or None
    if not form_field.initial:
        return None
    return list(form_field.initial) if form_field.multiple else form_field.initial[0]


def choose(form_field: SelectField, answer: str) -> str | list[str]:
    """The chosen value(s), by number or by label."""
    options = form_field.options
    for choice in options:  # a whole label first: labels may contain spaces
        if answer.lower() in (choice.label.lower(), choice.value.lower()):
            return [choice.value] if form_field.multiple else choice.value
    picked: list[str] = []
    for token in answer.replace(",", " ").split():
        if token.isdigit() and 1 <= int(token) <= len(options):
            value = options[int(token) - 1].value
        else:
            wanted = token.lower()
            match = [c.value for c in options if wanted in (c.label.lower(), c.value.lower())]
            if not match:
                raise BadChoice(
                    f'"{token}" is not one of the options; type a number from 1 to {len(options)}.'
                )
            value = match[0]
        if value not in picked:
            picked.append(value)
    if form_field.multiple:
        return picked
    if len(picked) != 1:
        raise BadChoice(f"Choose one option: a number from 1 to {len(options)}.")
    return picked[0]
