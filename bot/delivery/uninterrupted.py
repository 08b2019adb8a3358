"""Awaiting work that a cancellation must not cut short (a send that has started)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def complete(aw: Awaitable[T]) -> T:
    """Await ``aw`` to the end even if the caller is cancelled meanwhile, then re-raise the
    cancellation: a send that has started must finish and have its outcome recorded."""
    task = asyncio.ensure_future(aw)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        break
    if cancelled:
        raise asyncio.CancelledError
    return result
