"""Where the console writes: the conversation on a terminal, or a transcript in script mode."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO


class Terminal:
    """Where the console writes. In interactive mode it keeps the prompt intact when the bot
    speaks while you type; in script mode it echoes every input line after its prompt."""

    def __init__(self, out: TextIO, *, interactive: bool) -> None:
        self.out = out
        self.interactive = interactive
        self._prompt: str | None = None
        self._preface: str | None = None

    def show(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        if self._preface is not None:
            lines.insert(0, self._preface)
            self._preface = None
        if self._prompt is not None:
            self.out.write("\n")
        for line in lines:
            self.out.write(line + "\n")
        if self._prompt is not None:
            self.out.write(self._prompt)
        self.out.flush()

    def say(self, *lines: str) -> None:
        self.show(lines)

    def preface(self, line: str | None) -> None:
        """A line to print before the next output, if any comes (a demo-clock time stamp)."""
        self._preface = line

    def prompt(self, text: str) -> None:
        if self.interactive:
            self._prompt = text
            self.out.write(text)
            self.out.flush()

    def skipped(self) -> None:
        """A blank line where a command was expected: ask again, echo nothing."""
        self._prompt = None

    def answered(self, prompt: str, line: str | None) -> None:
        """The prompt got ``line`` (None: input ended); a script's input is echoed."""
        self._prompt = None
        if line is None:
            if self.interactive:
                self.out.write("\n")
        elif not self.interactive:
            self.out.write(f"{prompt}{line}".rstrip() + "\n")
        self.out.flush()
