"""How syncup names Teams members (see :func:`member_key`)."""

from __future__ import annotations

import re


def member_key(object_id: str) -> str:
    """The id syncup knows a Teams member by: their Entra object id as 32 upper-case hex
    digits, the shape every platform's mention syntax in the core accepts (``<@ABC123>``)."""
    compact = object_id.replace("-", "").upper()
    return compact if re.fullmatch(r"[0-9A-F]{32}", compact) else object_id


def object_id(key: str) -> str:
    """The Entra object id (what Teams' mention entities take) of a :func:`member_key`."""
    if not re.fullmatch(r"[0-9A-F]{32}", key):
        return key
    low = key.lower()
    return f"{low[:8]}-{low[8:12]}-{low[12:16]}-{low[16:20]}-{low[20:]}"
