"""Outgoing messages: the outbox (invariant 2) and the worker that drains it."""
