"""The file an export writes: checked before any work, complete or absent afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from bot.files import open_private
from storage.errors import OperatorError


def check_output(path: str) -> Path:
    """``path`` as a file syncup can create or replace, or an :class:`OperatorError` that says
    why not, raised before the export reads anything."""
    target = Path(path)
    folder = target.parent
    if target.is_dir():
        raise OperatorError(f"Cannot write {target}: it is a folder. Give a file name in it.")
    if not folder.exists():
        raise OperatorError(
            f"Cannot write {target}: the folder {folder} does not exist. Create it "
            f"(mkdir -p {folder}) or choose another path."
        )
    if not folder.is_dir():
        raise OperatorError(f"Cannot write {target}: {folder} is not a folder.")
    if not os.access(folder, os.W_OK | os.X_OK) or (
        target.exists() and not os.access(target, os.W_OK)
    ):
        raise OperatorError(
            f"Cannot write {target}: permission denied. Choose a path you may write to."
        )
    return target


@contextmanager
def atomic_output(path: str) -> Iterator[TextIO]:
    """A text file that appears at ``path`` only once everything was written: it is written
    next to it as ``PATH.partial`` and renamed at the end, so a failed export leaves nothing
    half-written behind."""
    target = check_output(path)
    partial = target.with_name(target.name + ".partial")
    try:
        try:
            out = open_private(partial, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise OperatorError(f"Cannot write {target}: {exc.strerror or exc}.") from None
        with out:
            yield out
        os.replace(partial, target)
    finally:
        if partial.exists():
            partial.unlink()
