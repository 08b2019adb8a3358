"""IANA time zones at the edges (invariant 7): validation with close suggestions."""

from __future__ import annotations

import difflib
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from bot.errors import UserError


@cache
def _zones() -> dict[str, str]:
    """Lower-cased name -> canonical name, without the legacy aliases (``US/Eastern``...)."""
    legacy_prefixes = ("Etc/", "SystemV/", "US/", "posix", "right/")
    return {
        zone.lower(): zone
        for zone in available_timezones()
        if ("/" in zone and not zone.startswith(legacy_prefixes)) or zone == "UTC"
    }


# Offered as a picker to members whose platform gives no time zone (Discord); 25 at most, the
# limit of a Discord select. Anything else is one `/syncup timezone Area/City` away.
COMMON_ZONES: tuple[str, ...] = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Helsinki",
    "Africa/Lagos",
    "Africa/Nairobi",
    "Europe/Istanbul",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@cache
def zone(name: str) -> ZoneInfo:
    """``ZoneInfo(name)``, kept: ZoneInfo's own cache holds only the 8 zones used last strongly,
    and a team in 20 zones would read zone files from disk on every prompt and answer."""
    return ZoneInfo(name)


def suggest(name: str, limit: int = 3) -> list[str]:
    zones = _zones()
    wanted = name.strip().lower().replace(" ", "_")
    close = _closest(wanted, list(zones), limit)
    if not close:
        # "Paris" -> Europe/Paris: match on the city part alone.
        cities = {key.rsplit("/", 1)[-1]: key for key in zones}
        close = [cities[c] for c in _closest(wanted, list(cities), limit)]
    return [zones[c] for c in close]


def _closest(word: str, candidates: list[str], limit: int) -> list[str]:
    """The best matches, keeping only those nearly as good as the best one."""
    scored = []
    for candidate in difflib.get_close_matches(word, candidates, n=limit, cutoff=0.6):
        scored.append((difflib.SequenceMatcher(None, word, candidate).ratio(), candidate))
    if not scored:
        return []
    best = scored[0][0]
    return [candidate for ratio, candidate in scored if ratio >= best - 0.05]


@cache
def _places() -> dict[str, str]:
    """Lower-cased name -> name of every zone that is a place (``Area/City``, legacy place
    aliases such as ``US/Eastern`` included) or UTC. Not the rest of the database: fixed
    offsets (``Etc/GMT+5``, ``EST``), rules (``EST5EDT``, ``posixrules``), ``Factory`` and the
    system's ``localtime``, which follow no place's clock or change with the machine."""
    not_places = ("Etc/", "SystemV/", "posix/", "right/")
    return {
        zone.lower(): zone
        for zone in available_timezones()
        if ("/" in zone and not zone.startswith(not_places)) or zone == "UTC"
    }


def validate_timezone(name: str) -> str:
    """The canonical IANA name for ``name``, or a :class:`UserError` with suggestions.

    Only places (``Area/City``) and UTC: a team's schedule follows where its people are."""
    cleaned = name.strip()
    wanted = cleaned.lower().replace(" ", "_")
    canonical = _zones().get(wanted) or _places().get(wanted)
    if canonical is not None:
        ZoneInfo(canonical)
        return canonical
    if cleaned in available_timezones() or cleaned.lower() in ("localtime", "factory"):
        raise UserError(
            f"\"{cleaned}\" is not a place's time zone (a fixed offset, a rule or the server's "
            "own setting); use an IANA Area/City name such as Europe/Paris, or UTC.",
            field="timezone",
        )
    hints = suggest(cleaned)
    hint = f"; try {' or '.join(hints)}" if hints else "; use an IANA name like Europe/Paris"
    raise UserError(f'Unknown timezone "{cleaned}"{hint}.', field="timezone")
