"""Is a standup blocker the one its member already reported?

"The same" is decided on normalised text: case-folded, punctuation turned into spaces, a few
filler words dropped ("still", "again", "the", "for"...) and each word lightly stemmed
("blocked", "blocking" and "blocks" are "block"). Two texts are the same blocker when

- their word sets overlap by at least :data:`TOKEN_THRESHOLD` (Jaccard: shared words over all
  words; "Waiting for staging access" and "Still waiting for staging access!" share all), or
- their normalised strings are at least :data:`RATIO_THRESHOLD` alike character by character
  (``difflib``'s ratio: catches typos such as "staging acess").

A different word in a short text ("staging access" / "prod access") is a different blocker:
the word sets overlap by only a half and the characters by less than 0.9. Numbers are names
(a PR, a ticket): two texts that both have numbers are the same only with the same numbers.
Only the member's blockers still open or acknowledged are compared; a resolved blocker named
again is a new one.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import TypeVar

TOKEN_THRESHOLD = 0.6
RATIO_THRESHOLD = 0.9

FILLER = frozenset(
    "a an the to for of on in at by with from and or is are am be been it its my i me we us "
    "our still again also just some any this that".split()
)
_WORD = re.compile(r"\w+")
_SUFFIXES = ("ing", "ed", "es", "s")

T = TypeVar("T")


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(folded.replace("_", " ")))


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> frozenset[str]:
    return frozenset(_stem(w) for w in normalise(text).split() if w not in FILLER)


def similarity(a: str, b: str) -> float:
    """The larger of the word-set overlap and the character ratio, from 0 to 1 (to rank the
    candidates :func:`is_same` accepts)."""
    ta, tb = tokens(a), tokens(b)
    jaccard = len(ta & tb) / len(ta | tb) if ta | tb else 0.0
    return max(jaccard, difflib.SequenceMatcher(None, normalise(a), normalise(b)).ratio())


def is_same(a: str, b: str) -> bool:
    ta, tb = tokens(a), tokens(b)
    numbers_a = {t for t in ta if any(c.isdigit() for c in t)}
    numbers_b = {t for t in tb if any(c.isdigit() for c in t)}
    if numbers_a and numbers_b and numbers_a != numbers_b:
        return False  # "PR 42" and "PR 57", "ticket 7" and "ticket 8" are different blockers
    if ta | tb and len(ta & tb) / len(ta | tb) >= TOKEN_THRESHOLD:
        return True
    return difflib.SequenceMatcher(None, normalise(a), normalise(b)).ratio() >= RATIO_THRESHOLD


def best_match(
    text: str, candidates: Iterable[T], text_of: Sequence[str] | None = None
) -> T | None:
    """The candidate whose text is most like ``text`` among those that are the same blocker;
    ``text_of`` gives each candidate's text (defaults to ``candidate.text``)."""
    items = list(candidates)
    texts = list(text_of) if text_of is not None else [c.text for c in items]
    best: tuple[float, T] | None = None
    for candidate, other in zip(items, texts, strict=True):
        if not is_same(text, other):
            continue
        score = similarity(text, other)
        if best is None or score > best[0]:
            best = (score, candidate)
    return best[1] if best is not None else None
