"""The question bank of a pulse: the default questions, the editable text form, and rotation.

A bank is a list of ``{"key", "text", "kind"}`` (kind ``scale``: 1-5, or ``enps``: 0-10). The
``key`` ties the askings of one question together across rounds (trends, pooling), so it must
survive edits: a line whose kind and text are unchanged (ignoring case and spacing) keeps its key;
a new or reworded line gets a key derived from its kind and text, so putting a removed question
back finds its history again, and a reworded one starts afresh (its answers are to a different
question).

Rotation: each round asks ``questions_per_round`` questions from ``next_question`` on, wrapping
around, and moves the pointer past them, so every question is asked once before any repeats.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from bot.errors import UserError

KINDS = ("scale", "enps")
MAX_QUESTION_CHARS = 300
MAX_BANK = 60
# A text field holds at most this much (Slack's plain_text_input limit is 3,000 characters).
FIELD_CHARS = 2_000
MAX_BANK_FIELDS = 4

# Written for syncup: short, answerable in a second on a 1-5 scale ("strongly disagree" to
# "strongly agree", or "not at all" to "completely"), about how the work feels rather than
# about output. One eNPS question, scored -100..100.
DEFAULT_BANK: tuple[dict[str, str], ...] = (
    {"key": "pace", "kind": "scale", "text": "How sustainable was this week's pace?"},
    {"key": "goals", "kind": "scale", "text": "How clear are the goals you are working towards?"},
    {
        "key": "blockers",
        "kind": "scale",
        "text": "How quickly do blockers get cleared when you raise them?",
    },
    {
        "key": "recognition",
        "kind": "scale",
        "text": "How recognised did you feel for your work this week?",
    },
    {
        "key": "safety",
        "kind": "scale",
        "text": "How safe does it feel to say 'I don't know' or 'I made a mistake' here?",
    },
    {
        "key": "collaboration",
        "kind": "scale",
        "text": "How well did the team work together this week?",
    },
    {
        "key": "focus",
        "kind": "scale",
        "text": "How much uninterrupted focus time did you get this week?",
    },
    {
        "key": "meetings",
        "kind": "scale",
        "text": "How worthwhile were the meetings you attended this week?",
    },
    {
        "key": "tooling",
        "kind": "scale",
        "text": "How well do our tools and build pipeline support your work?",
    },
    {"key": "learning", "kind": "scale", "text": "How much did you learn this week?"},
    {
        "key": "autonomy",
        "kind": "scale",
        "text": "How much say do you have in how you do your work?",
    },
    {
        "key": "feedback",
        "kind": "scale",
        "text": "How useful was the feedback you got on your work recently?",
    },
    {
        "key": "wellbeing",
        "kind": "scale",
        "text": "How are you doing, outside of the work itself?",
    },
    {
        "key": "oncall",
        "kind": "scale",
        "text": "How manageable is the on-call and interrupt load right now?",
    },
    {
        "key": "release",
        "kind": "scale",
        "text": "How confident are you when we ship a release?",
    },
    {
        "key": "quality",
        "kind": "scale",
        "text": "How proud are you of the quality of what we shipped lately?",
    },
    {
        "key": "priorities",
        "kind": "scale",
        "text": "How stable were priorities this week, without last-minute switches?",
    },
    {
        "key": "voice",
        "kind": "scale",
        "text": "How much are your ideas heard when the team makes decisions?",
    },
    {
        "key": "support",
        "kind": "scale",
        "text": "How easy is it to get help from a teammate when you are stuck?",
    },
    {
        "key": "growth",
        "kind": "scale",
        "text": "How well does your current work fit where you want to grow?",
    },
    {
        "key": "enps",
        "kind": "enps",
        "text": "How likely are you to recommend working on this team to a friend?",
    },
)


def default_bank() -> list[dict[str, str]]:
    return [dict(q) for q in DEFAULT_BANK]


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip()).lower()


def derived_key(kind: str, text: str) -> str:
    digest = hashlib.sha256(f"{kind}|{_normal(text)}".encode()).hexdigest()
    return f"q{digest[:12]}"


def bank_lines(bank: Sequence[dict[str, Any]]) -> list[str]:
    """The bank as the editable lines of the questions form."""
    return [f"{q['kind']} | {q['text']}" for q in bank]


def bank_chunks(bank: Sequence[dict[str, Any]]) -> list[str]:
    """The lines split over text fields of at most :data:`FIELD_CHARS` each (never inside a
    line), for a form whose every field stays inside the platforms' limits."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in bank_lines(bank):
        if current and size + len(line) + 1 > FIELD_CHARS:
            chunks.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        chunks.append("\n".join(current))
    return chunks or [""]


def parse_bank(raw: str, previous: Sequence[dict[str, Any]] = ()) -> list[dict[str, str]]:
    """Lines ``kind | text`` (a line without a kind is a scale question) into a bank, keeping
    the key of every question whose kind and text are unchanged. Raises :class:`UserError` that
    names the first bad line."""
    known = {(q["kind"], _normal(q["text"])): q["key"] for q in previous}
    lines = [line.strip() for line in raw.splitlines() if line.strip()]
    if not lines:
        raise UserError('Add at least one question, e.g. "scale | How sustainable was the pace?"')
    if len(lines) > MAX_BANK:
        raise UserError(f"At most {MAX_BANK} questions; you gave {len(lines)}.")
    bank: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        kind, sep, rest = line.partition("|")
        if sep:
            kind, question = kind.strip().lower(), rest.strip()
        else:
            kind, question = "scale", line
        if kind not in KINDS:
            raise UserError(
                f'Line {number}: unknown kind "{kind}"; start the line with "scale |" (1-5) or '
                '"enps |" (0-10).'
            )
        if not question:
            raise UserError(f'Line {number} has no question after "{kind} |".')
        if len(question) > MAX_QUESTION_CHARS:
            raise UserError(
                f"Line {number} is {len(question)} characters long; keep each to "
                f"{MAX_QUESTION_CHARS} or fewer."
            )
        normal = _normal(question)
        if normal in seen:
            raise UserError(f'Line {number} repeats line {seen[normal]}: "{question}".')
        seen[normal] = number
        key = known.get((kind, normal)) or derived_key(kind, question)
        bank.append({"key": key, "text": question, "kind": kind})
    if len({q["key"] for q in bank}) != len(bank):  # only a hand-made key could clash
        raise UserError("Two questions ended up with the same key; reword one of them.")
    return bank


def rebase_pointer(
    old_bank: Sequence[dict[str, Any]], pointer: int, new_bank: Sequence[dict[str, Any]]
) -> int:
    """Where rotation goes on in an edited bank: at the question that was due next if it is
    still there, else at the first later question of the old bank that is still there."""
    if not new_bank:
        return 0
    positions = {q["key"]: i for i, q in enumerate(new_bank)}
    count = len(old_bank)
    for step in range(count):
        key = old_bank[(pointer + step) % count]["key"]
        if key in positions:
            return positions[key]
    return 0


def next_questions(
    bank: Sequence[dict[str, Any]], pointer: int, per_round: int
) -> tuple[list[dict[str, Any]], int]:
    """The questions of the next round and the new pointer (see the module docstring). A bank
    smaller than ``per_round`` is asked whole, once."""
    if not bank:
        return [], 0
    count = len(bank)
    take = min(per_round, count)
    start = pointer % count
    picked = [bank[(start + i) % count] for i in range(take)]
    return picked, (start + take) % count
