'''Where the console's input lines come from: stdin (read on a thread, so a blocked read never
keeps the process alive) or a list of lines in tests, through one queue.

One answer, command or DM may span several lines, two ways: a line that ends with a backslash
goes on on the next line (``Shipped the login page \\`` then ``and its tests``), and a line
``"""`` starts a block that the next line ending in ``"""`` ends (for pasting). Lines after
the first are read after a ``... `` prompt.
'''

from __future__ import annotations

import asyncio
import logging
import re
import sys
import threading
from collections.abc import Iterable

from adapters.console.terminal import Terminal

log = logging.getLogger(__name__)

BLOCK = '"""'
CONTINUE = "\\"


class LineReader:
    def __init__(self, terminal: Terminal, lines: Iterable[str] | None = None) -> None:
        self.terminal = terminal
        self._lines = list(lines) if lines is not None else None
        self._queue: asyncio.Queue[str | None] | None = None
        self._eof = False

    @property
    def scripted(self) -> bool:
        """Whether the lines were given (tests) rather than read from stdin."""
        return self._lines is not None

    def start(self) -> None:
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._queue = queue
        if self._lines is not None:
            for line in self._lines:
                queue.put_nowait(line)
            queue.put_nowait(None)
            return
        loop = asyncio.get_running_loop()

        def feed(item: str | None) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: the console is gone
                return False
            return True

        def read_stdin() -> None:
            try:
                for line in sys.stdin:
                    if not feed(line):
                        return
            except (OSError, ValueError) as exc:
                log.debug("stdin closed: %s", exc)
            feed(None)

        # A daemon thread, not the loop's executor: a read blocked on a terminal must not keep
        # the process alive after /quit.
        threading.Thread(target=read_stdin, name="console-stdin", daemon=True).start()

    async def read(self, prompt: str, *, blank: bool) -> str | None:
        """The next input (None at the end of input), its lines joined by newlines when it
        spans several; blank lines are skipped unless ``blank``. In script mode every line
        is echoed after its prompt."""
        line = await self._line(prompt, blank=blank)
        if line is None:
            return None
        more = continuation_prompt(prompt)
        if line.strip().startswith(BLOCK):
            return await self._block(line.strip()[len(BLOCK) :], more)
        parts: list[str] = []
        while line.rstrip().endswith(CONTINUE):
            parts.append(line.rstrip()[: -len(CONTINUE)])
            following = await self._line(more, blank=True)
            if following is None:
                return None
            line = following
        parts.append(line)
        return "\n".join(parts)

    async def _block(self, first: str, prompt: str) -> str | None:
        """The lines up to the one that ends with the closing quotes (None if input ends)."""
        parts: list[str] = []
        line: str | None = first
        while line is not None:
            end = line.rstrip().endswith(BLOCK)
            if end:
                line = line.rstrip()[: -len(BLOCK)]
            if line.strip() or (parts and not end):
                parts.append(line)
            if end:
                return "\n".join(parts).strip("\n")
            line = await self._line(prompt, blank=True)
        return None

    async def _line(self, prompt: str, *, blank: bool) -> str | None:
        assert self._queue is not None
        while not self._eof:
            self.terminal.prompt(prompt)
            item = await self._queue.get()
            if item is None:
                self._eof = True
                self.terminal.answered(prompt, None)
                return None
            line = item.rstrip("\r\n")
            if not line.strip() and not blank:
                self.terminal.skipped()
                continue
            self.terminal.answered(prompt, line)
            return line
        return None


def continuation_prompt(prompt: str) -> str:
    """``... `` under the prompt's indentation."""
    indent = re.match(r"\s*", prompt)
    return (indent.group() if indent else "") + "... "
