"""What a new poll is made of, from a typed line or from the form, checked before anything is
saved (invariant 8: a clear private error that names what to fix, and nothing half-saved).

The one-line syntax (``/poll "Ship Friday?" "Yes" "No" --anonymous --closes 2d``) is split like a
shell line (:mod:`shlex`) and read with :mod:`argparse`. Curly quotes that Slack and macOS
autocorrect type (“ ” ‘ ’) count as straight ones; an apostrophe inside a word (``Who’s``) stays
an apostrophe. A line without any quotes still works when the question ends with a question
mark: ``/poll Ship Friday? Yes No``; without quotes or a question mark, where the question ends
is not guessed: the line is refused with a hint to quote it (a scale, eNPS or text poll, which
has no options, takes every word as its question). An option that takes a value may be given
once.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from bot.errors import UsageError, UserError
from bot.features.polls.spec import CREATE_EXAMPLE
from bot.timezones import zone as zone_info
from storage.polls import PollKind, ResultsVisibility

# Slack cuts button and option text at 75 characters; a poll's options must fit whole.
MAX_OPTION_CHARS = 75
MAX_QUESTION_CHARS = 300
# Invariant 6: results need at least this many answers; never configurable below 3.
MIN_THRESHOLD = 3
DEFAULT_THRESHOLD = 5
MAX_THRESHOLD = 50
MAX_DEADLINE = timedelta(days=366)
# Text after a date alone: the poll runs until the end of that day (in the creator's zone).
END_OF_DAY = time(23, 59)

KIND_NAMES: Mapping[PollKind, str] = {
    PollKind.SINGLE: "single choice",
    PollKind.MULTIPLE: "multiple choice",
    PollKind.SCALE: "1-5 scale",
    PollKind.ENPS: "eNPS (0-10)",
    PollKind.TEXT: "open answer",
}


def sentence(phrase: str) -> str:
    """``single choice`` -> ``Single choice``; ``eNPS (0-10)`` stays as it is."""
    if len(phrase) > 1 and phrase[1].isupper():
        return phrase
    return phrase[:1].upper() + phrase[1:]


PLATFORM_NAMES: Mapping[str, str] = {
    "slack": "Slack",
    "discord": "Discord",
    "console": "The console",
}

LINE_USAGE = (
    '`/poll "Question?" "Option" "Option" ...` with any of `--anonymous`, `--multiple [N]`, '
    "`--scale`, `--enps`, `--text`, `--results live|closed|creator`, "
    '`--closes 2d|3h|30m|YYYY-MM-DD|"YYYY-MM-DD HH:MM"`, `--threshold N`'
)


@dataclass(frozen=True)
class PollInput:
    """A new poll's settings, checked."""

    question: str
    kind: PollKind
    options: tuple[str, ...]
    max_choices: int
    anonymous: bool
    results: ResultsVisibility
    closes_at: datetime | None
    threshold: int


@dataclass(frozen=True)
class Limits:
    """What the platform can show and whose clock a deadline is read on."""

    max_options: int
    platform: str
    zone: str
    now: datetime

    @property
    def platform_name(self) -> str:
        return PLATFORM_NAMES.get(self.platform, self.platform.title() or "This platform")


# -- deadlines -------------------------------------------------------------------------------------

_RELATIVE = re.compile(
    r"^(\d{1,6})\s*(w|weeks?|d|days?|h|hrs?|hours?|m|mins?|minutes?)$", re.IGNORECASE
)
_NEGATIVE = re.compile(r"^-\s*\d")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1)}
_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
DEADLINE_HELP = '2d, 3h, 30m, YYYY-MM-DD or "YYYY-MM-DD HH:MM"'


def parse_deadline(raw: str, now: datetime, zone: str) -> datetime:
    """A deadline as typed, as a UTC instant: relative (``2d``, ``3h``, ``30m``, ``1w``) from
    ``now``, or a local date (the end of that day) or date and time in ``zone``. A local time
    that a DST change skips is shifted forward by the gap, as zoneinfo does."""
    value = raw.strip().strip("\"'").strip()
    if _NEGATIVE.match(value):
        raise UserError(
            f'The deadline "{value}" is in the past: give a positive duration or a future '
            f"date ({DEADLINE_HELP})."
        )
    match = _RELATIVE.match(value)
    if match:
        amount, unit = int(match.group(1)), match.group(2).lower()
        step = _UNITS.get(unit[0], timedelta(minutes=1))
        when = now + amount * step if amount * step <= MAX_DEADLINE * 2 else now + MAX_DEADLINE * 2
    else:
        local: datetime | None = None
        for fmt in _FORMATS:
            try:
                parsed = datetime.strptime(value, fmt)
            except ValueError:
                continue
            if fmt == "%Y-%m-%d":
                parsed = datetime.combine(parsed.date(), END_OF_DAY)
            local = parsed.replace(tzinfo=zone_info(zone))
            break
        if local is None:
            raise UserError(
                f'I can\'t read the deadline "{raw.strip()}". Use {DEADLINE_HELP} '
                f"(your time, {zone})."
            )
        when = local.astimezone(UTC)
    when = when.replace(microsecond=0)
    if when <= now:
        raise UserError(
            f"The deadline {describe_local(when, zone)} is in the past; give a later one "
            f"({DEADLINE_HELP})."
        )
    if when - now > MAX_DEADLINE:
        raise UserError(
            f"The deadline {describe_local(when, zone)} is more than a year away; polls run "
            "for a year at most."
        )
    return when


def describe_local(when: datetime, zone: str) -> str:
    """``Wed 11 Mar 2026 17:00 (Europe/Berlin)``."""
    local = when.astimezone(zone_info(zone))
    return f"{local:%a} {local.day} {local:%b %Y %H:%M} ({zone})"


# -- checks shared by the line and the form --------------------------------------------------------


@dataclass
class _Draft:
    """What was typed, before it is checked; ``None`` means "not given"."""

    question: str
    kind: PollKind
    options: list[str]
    max_choices: int | None
    anonymous: bool
    results: str | None
    closes: str | None
    threshold: int | None


def _check(draft: _Draft, limits: Limits) -> tuple[PollInput | None, dict[str, str]]:
    """The checked poll, or every problem by the form field it belongs to."""
    errors: dict[str, str] = {}
    question = " ".join(draft.question.split())
    if not question:
        errors["question"] = "Write the question."
    elif len(question) > MAX_QUESTION_CHARS:
        errors["question"] = (
            f"The question is {len(question)} characters; keep it to {MAX_QUESTION_CHARS}."
        )
    kind = draft.kind
    options = [" ".join(o.split()) for o in draft.options]
    max_choices = 1
    if kind in (PollKind.SINGLE, PollKind.MULTIPLE):
        problem = _option_problem(options, limits)
        if problem:
            errors["options"] = problem
        if kind is PollKind.MULTIPLE:
            max_choices = draft.max_choices if draft.max_choices is not None else len(options)
            if "options" not in errors and not 2 <= max_choices <= len(options):
                span = f"2 to {len(options)}" if len(options) > 2 else "2"
                errors["max_choices"] = (
                    f"The most options a voter may pick must be {span} (the number of options; "
                    f"1 is a single choice poll), not {max_choices}."
                )
    else:
        if any(options):
            listed = ", ".join(f'"{o}"' for o in options if o)
            what = {
                PollKind.SCALE: "its answers are 1 to 5",
                PollKind.ENPS: "its answers are 0 to 10",
                PollKind.TEXT: "everyone writes their own answer",
            }[kind]
            errors["options"] = (
                f"A {KIND_NAMES[kind]} poll takes no options ({what}); leave out {listed}."
            )
        if draft.max_choices is not None:
            errors["max_choices"] = "Only a multiple choice poll takes a number of choices."
    threshold = draft.threshold if draft.threshold is not None else DEFAULT_THRESHOLD
    if threshold < MIN_THRESHOLD:
        errors["threshold"] = (
            f"The threshold can't be below {MIN_THRESHOLD}: with fewer answers, results could "
            f"show who answered what. {threshold} is too low."
        )
    elif threshold > MAX_THRESHOLD:
        errors["threshold"] = f"The threshold can be {MAX_THRESHOLD} at most, not {threshold}."
    results: ResultsVisibility
    if draft.results is None:
        results = ResultsVisibility.CLOSED if draft.anonymous else ResultsVisibility.LIVE
    else:
        results = ResultsVisibility(draft.results)
        if results is ResultsVisibility.LIVE and draft.anonymous:
            errors["results"] = (
                "Live counts are never shown for anonymous polls: watching them change vote by "
                "vote would tell who chose what. Choose results when it closes, or for its "
                "creator only."
            )
    closes_at: datetime | None = None
    if draft.closes:
        try:
            closes_at = parse_deadline(draft.closes, limits.now, limits.zone)
        except UserError as exc:
            errors["closes"] = exc.message
    if errors:
        return None, errors
    return (
        PollInput(
            question=question,
            kind=kind,
            options=tuple(options) if kind in (PollKind.SINGLE, PollKind.MULTIPLE) else (),
            max_choices=max_choices,
            anonymous=draft.anonymous,
            results=results,
            closes_at=closes_at,
            threshold=threshold,
        ),
        {},
    )


def _option_problem(options: Sequence[str], limits: Limits) -> str | None:
    for number, option in enumerate(options, start=1):
        if not option:
            return f"Option {number} is empty; write it or leave it out."
    if len(options) < 2:
        gave = f"you gave {len(options)}" if options else "you gave none"
        return f"A poll needs at least 2 options; {gave}."
    if len(options) > limits.max_options:
        return (
            f"{limits.platform_name} can show at most {limits.max_options} options in one poll; "
            f"you gave {len(options)}."
        )
    seen: dict[str, str] = {}
    for option in options:
        key = option.casefold()
        if key in seen:
            if seen[key] == option:
                return f'"{option}" is there twice; each option must be different.'
            return (
                f'"{seen[key]}" and "{option}" are the same option; each option must be different.'
            )
        seen[key] = option
    for option in options:
        if len(option) > MAX_OPTION_CHARS:
            return (
                f'The option "{option[:30]}…" is {len(option)} characters; keep options to '
                f"{MAX_OPTION_CHARS} (Slack cuts longer ones)."
            )
    return None


def _raise(errors: dict[str, str], *, form: bool) -> None:
    if form:
        summary = next(iter(errors.values())) if len(errors) == 1 else "Some fields need fixing."
        raise UserError(summary, errors=errors)
    raise UserError(" ".join(errors.values()))


# -- the one-line syntax ---------------------------------------------------------------------------


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse would print and exit; a chat command must get a reply instead.
        raise _ArgumentError(message)


class _Once(argparse.Action):
    """An option that takes a value and may be given once: a second ``--closes`` is a mistake
    to point out, not a value to keep silently."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, self.dest, None) is not None:
            raise _ArgumentError(
                f"{self.option_strings[0]} is given twice; give it once, with the value you mean"
            )
        setattr(namespace, self.dest, values)


# Options that take a value; a value that starts with "-" (--closes -2d, --multiple -1) is
# still their value, not an unknown option.
VALUE_OPTIONS = ("--multiple", "--results", "--closes", "--threshold")


def _choices(value: str) -> int | str:
    """``--multiple``'s value: a number, or "" when none was given."""
    return int(value) if value else ""


def _parser() -> _Parser:
    parser = _Parser(prog="/poll", add_help=False, exit_on_error=False)
    parser.add_argument("words", nargs="*")
    parser.add_argument("--anonymous", action="store_true")
    parser.add_argument("--multiple", type=_choices, action=_Once)
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--enps", action="store_true")
    parser.add_argument("--text", action="store_true")
    parser.add_argument("--results", choices=[v.value for v in ResultsVisibility], action=_Once)
    parser.add_argument("--closes", action=_Once)
    parser.add_argument("--threshold", type=int, action=_Once)
    return parser


_DOUBLE = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"'})
# A curly single quote is a quote unless it sits between two letters (an apostrophe: Who’s).
_SINGLE = re.compile(r"\u2018|(?<!\w)\u2019|\u2019(?!\w)")


def straighten(line: str) -> str:
    """Curly quotes as straight ones; apostrophes inside words are left alone."""
    return _SINGLE.sub("'", line.translate(_DOUBLE))


def split_line(line: str) -> tuple[list[str], bool]:
    """Shell-like words, and whether any quotes grouped them. ``#`` and backslashes are plain
    characters; an unmatched single quote is an apostrophe (``Who's in?``), not an error."""
    for quotes in ("\"'", '"'):
        lexer = shlex.shlex(line, posix=True)
        lexer.whitespace_split = True
        lexer.commenters = ""
        lexer.escape = ""
        lexer.quotes = quotes
        try:
            return list(lexer), any(q in line for q in quotes)
        except ValueError:
            continue
    raise UsageError(f"A quotation mark is not closed. Usage: {LINE_USAGE}.")


_NUMBER = re.compile(r"^[+-]?\d+([.,]\d+)?$")


def _value_option(word: str) -> str | None:
    """The value option ``word`` names, abbreviations included (``--clo``), or None."""
    if not word.startswith("--") or "=" in word or len(word) < 4:
        return None
    named = [option for option in VALUE_OPTIONS if option.startswith(word)]
    return named[0] if len(named) == 1 else None


def _attach_values(words: list[str]) -> list[str]:
    """Each value option joined to its value (``--closes=-2d``) for argparse, which would take
    a value starting with "-" for an option. ``--multiple`` takes an optional number:
    ``--multiple 2`` becomes ``--multiple=2`` (``-1`` and ``2.5`` too, to be refused) and a
    bare ``--multiple`` (any number of options) becomes ``--multiple=``, an empty value."""
    out: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        option = _value_option(word)
        following = words[index + 1] if index + 1 < len(words) else None
        if option == "--multiple":
            if following is not None and _NUMBER.match(following):
                out.append(f"--multiple={following}")
                index += 2
                continue
            out.append("--multiple=")
        elif option is not None and following is not None and not following.startswith("--"):
            out.append(f"{option}={following}")
            index += 2
            continue
        else:
            out.append(word)
        index += 1
    return out


def parse_line(line: str, limits: Limits) -> PollInput:
    """A poll from the one-line syntax, checked; a :class:`UserError` says what to fix."""
    words, quoted = split_line(straighten(line))
    words = _attach_values(words)
    try:
        args = _parser().parse_intermixed_args(words)
    except (_ArgumentError, argparse.ArgumentError) as exc:
        raise UsageError(f"{_argparse_message(str(exc))} Usage: {LINE_USAGE}.") from None
    positional: list[str] = list(args.words)
    if not positional:
        raise UsageError(
            f"Write the question first. Usage: {LINE_USAGE}. Example: `{CREATE_EXAMPLE}`."
        )
    kinds = [
        kind
        for kind, chosen in (
            (PollKind.MULTIPLE, args.multiple is not None),
            (PollKind.SCALE, args.scale),
            (PollKind.ENPS, args.enps),
            (PollKind.TEXT, args.text),
        )
        if chosen
    ]
    if len(kinds) > 1:
        raise UsageError("Pick one kind of poll: --multiple, --scale, --enps or --text.")
    kind = kinds[0] if kinds else PollKind.SINGLE
    question, options = _question_and_options(positional, quoted, kind)
    max_choices = None
    if isinstance(args.multiple, int):
        max_choices = args.multiple
    draft = _Draft(
        question=question,
        kind=kind,
        options=options,
        max_choices=max_choices,
        anonymous=args.anonymous,
        results=args.results,
        closes=args.closes,
        threshold=args.threshold,
    )
    parsed, errors = _check(draft, limits)
    if parsed is None:
        _raise(errors, form=False)
    assert parsed is not None
    return parsed


def _question_and_options(
    positional: list[str], quoted: bool, kind: PollKind
) -> tuple[str, list[str]]:
    """Where the question ends. Quoted, it is the first word; without quotes, it runs to the
    first word ending with "?"; a kind without options (scale, eNPS, text) takes every word.
    Anything else is ambiguous and refused, never guessed."""
    if quoted or len(positional) == 1:
        return positional[0], positional[1:]
    if kind in (PollKind.SCALE, PollKind.ENPS, PollKind.TEXT):
        return " ".join(positional), []
    end = next((i for i, w in enumerate(positional) if w.endswith("?")), None)
    if end is None:
        raise UsageError(
            "I can't tell where the question ends and the options begin: put the question in "
            f'quotes, e.g. `/poll "{" ".join(positional[:-2])}" {" ".join(positional[-2:])}`, '
            'or end it with "?".'
        )
    return " ".join(positional[: end + 1]), positional[end + 1 :]


def _argparse_message(raw: str) -> str:
    """argparse's wording, in the bot's voice."""
    if raw.startswith("unrecognized arguments:"):
        return f"I don't know {raw.split(':', 1)[1].strip()}."
    match = re.match(r"argument --multiple: invalid _choices value: '(.*)'", raw)
    if match:
        return (
            f"--multiple takes a whole number from 2 to the number of options, "
            f'not "{match.group(1)}".'
        )
    match = re.match(r"argument (\S+): invalid int value: '(.*)'", raw)
    if match:
        return f'{match.group(1)} takes a whole number, not "{match.group(2)}".'
    match = re.match(r"argument (\S+): invalid choice: '(.*)' \(choose from (.*)\)", raw)
    if match:
        return f'{match.group(1)} must be one of {match.group(3)}, not "{match.group(2)}".'
    match = re.match(r"argument (\S+): expected one argument", raw)
    if match:
        return f"{match.group(1)} needs a value."
    match = re.match(r"argument (\S+): ambiguous option: (\S+) could match (.*)", raw)
    if match:
        return f"{match.group(2)} could be {match.group(3)}; write it out."
    return raw[:1].upper() + raw[1:] + "."


# -- the form --------------------------------------------------------------------------------------

FORM_FIELDS = (
    "question",
    "kind",
    "options",
    "max_choices",
    "anonymous",
    "results",
    "closes",
    "threshold",
)


def _one(values: Mapping[str, str | list[str]], name: str) -> str:
    raw = values.get(name, "")
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return str(raw).strip()


def parse_form(values: Mapping[str, str | list[str]], limits: Limits) -> PollInput:
    """A poll from the create form, checked; errors are named by field (the form stays open
    and shows each next to its field)."""
    errors: dict[str, str] = {}
    raw_kind = _one(values, "kind") or PollKind.SINGLE.value
    try:
        kind = PollKind(raw_kind)
    except ValueError:
        errors["kind"] = f'"{raw_kind}" is not a kind of poll.'
        kind = PollKind.SINGLE
    raw_options = _one(values, "options")
    if "\n" not in raw_options and "|" in raw_options:
        raw_options = raw_options.replace("|", "\n")  # one line: "Rust | Go | Zig"
    options = [line for line in raw_options.splitlines() if line.strip()]
    max_choices: int | None = None
    raw_max = _one(values, "max_choices")
    if raw_max:
        if raw_max.isdigit():
            max_choices = int(raw_max)
        else:
            errors["max_choices"] = (
                f'Write a number for the most options one may pick, not "{raw_max}".'
            )
    threshold: int | None = None
    raw_threshold = _one(values, "threshold")
    if raw_threshold:
        if raw_threshold.lstrip("-").isdigit():
            threshold = int(raw_threshold)
        else:
            errors["threshold"] = f'Write the threshold as a number, not "{raw_threshold}".'
    raw_results = _one(values, "results") or None
    if raw_results is not None and raw_results not in {v.value for v in ResultsVisibility}:
        errors["results"] = f'"{raw_results}" is not a choice here.'
        raw_results = None
    draft = _Draft(
        question=_one(values, "question"),
        kind=kind,
        options=options,
        max_choices=max_choices,
        anonymous=_one(values, "anonymous").lower() in ("yes", "true", "1"),
        results=raw_results,
        closes=_one(values, "closes") or None,
        threshold=threshold,
    )
    if kind is PollKind.MULTIPLE and max_choices == 0:
        draft.max_choices = None
    parsed, problems = _check(draft, limits)
    for name, problem in problems.items():
        errors.setdefault(name, problem)
    if errors or parsed is None:
        _raise(errors, form=True)
    assert parsed is not None
    return parsed
