"""Errors that reach people. Anything else is a bug: logged with context, answered politely."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: the message says what to fix and goes privately to whoever caused it.

    Raising it rolls back every change of the event (invariant 8).
    """

    def __init__(
        self, message: str, *, field: str | None = None, errors: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # For forms: every field in error with its own message, shown next to the field.
        self.errors = errors or ({field: message} if field else {})


class UsageError(UserError):
    """A command line that does not match its spec; the message ends with the usage."""


class PermissionDenied(UserError):
    pass
