"""Keeping the garbage collector out of bursts of requests."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Move everything allocated so far (modules, SQLAlchemy's mappers and statement caches,
    settings: it lives as long as the process) out of the cyclic GC's sight. Otherwise each full
    collection rescans it all and stops the event loop for 0.1 to 0.3 s, in the middle of a
    burst, for every request in flight (benchmarks/webhooks.py). Collected first, so that what
    is garbage already is not kept for ever."""
    gc.collect()
    gc.freeze()


_settled = False


def settle_heap_once() -> None:
    """:func:`settle_heap` the first time a process asks; later starts (tests) skip it."""
    global _settled
    if not _settled:
        _settled = True
        settle_heap()
