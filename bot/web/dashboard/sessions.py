"""Signed cookies: the session (who is signed in, and the CSRF token of their forms) and the
short-lived pre-sign-in cookie that binds an OAuth ``state`` (and the login link form's CSRF
token) to this browser.

Both are signed with itsdangerous under a key derived from the [security] key material
(:func:`bot.webhooks.keys.find_key`): never a built-in default, so a forged cookie needs that
key. The signature carries its time; an expired cookie is refused like a forged one.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "syncup_session"
PRE_COOKIE = "syncup_signin"
PRE_SECONDS = 600  # an OAuth round trip or a login link's form must finish within this


@dataclass(frozen=True)
class Session:
    platform: str
    user_id: str
    name: str
    csrf: str


class Signer:
    def __init__(self, key: str, session_seconds: int) -> None:
        self.session_seconds = session_seconds
        self._session = URLSafeTimedSerializer(key, salt="syncup.dashboard.session")
        self._pre = URLSafeTimedSerializer(key, salt="syncup.dashboard.signin")

    def session_cookie(self, platform: str, user_id: str, name: str) -> str:
        data = {"p": platform, "u": user_id, "n": name, "c": secrets.token_urlsafe(24)}
        return self._session.dumps(data)

    def read_session(self, raw: str | None) -> Session | None:
        data = _loads(self._session, raw, self.session_seconds)
        if data is None:
            return None
        try:
            return Session(str(data["p"]), str(data["u"]), str(data["n"]), str(data["c"]))
        except (KeyError, TypeError):
            return None

    def pre_cookie(self, state: str, platform: str) -> str:
        return self._pre.dumps({"s": state, "p": platform})

    def read_pre(self, raw: str | None) -> dict[str, str] | None:
        data = _loads(self._pre, raw, PRE_SECONDS)
        if not isinstance(data, dict):
            return None
        return {str(k): str(v) for k, v in data.items()}


def _loads(serializer: URLSafeTimedSerializer, raw: str | None, max_age: int) -> Any:
    if not raw:
        return None
    try:
        return serializer.loads(raw, max_age=max_age)
    except BadSignature:  # also SignatureExpired
        return None


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens; a missing one never matches."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode(), b.encode())
