"""Sign in with Slack (OpenID Connect) and with Discord (OAuth2, scope ``identify``).

Authorization code flow: the browser is sent to the platform's authorize page with a random
``state`` that is also in a signed cookie of this browser (:mod:`.sessions`); the callback
accepts a code only with that same state, swaps it for a token over the back channel, and asks
the platform who the token belongs to (Slack's ``openid.connect.userInfo``, Discord's
``/users/@me``). The endpoints' bases come from the settings, so tests point them at fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

import httpx

from bot.config import Settings

TIMEOUT = httpx.Timeout(10.0)


class SignInFailed(Exception):
    """The platform refused the code or answered something unexpected (message: one line)."""


@dataclass(frozen=True)
class Account:
    platform: str
    user_id: str
    name: str


@dataclass(frozen=True)
class Provider:
    platform: str
    label: str
    client_id: str
    client_secret: str
    authorize_url: str
    api_base: str

    def authorize(self, redirect_uri: str, state: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
        if self.platform == "slack":
            params["scope"] = "openid profile"
            params["nonce"] = state
        else:
            params["scope"] = "identify"
            params["prompt"] = "none"
        return f"{self.authorize_url}?{urlencode(params)}"

    async def account(self, code: str, redirect_uri: str) -> Account:
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            try:
                if self.platform == "slack":
                    return await self._slack(http, code, redirect_uri)
                return await self._discord(http, code, redirect_uri)
            except httpx.HTTPError as exc:
                raise SignInFailed(
                    f"{self.label} could not be reached ({type(exc).__name__})"
                ) from None
            except (ValueError, KeyError, TypeError):
                raise SignInFailed(f"{self.label} answered something unexpected") from None

    async def _slack(self, http: httpx.AsyncClient, code: str, redirect_uri: str) -> Account:
        base = self.api_base.rstrip("/")
        token = (
            await http.post(
                f"{base}/openid.connect.token",
                data={
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "grant_type": "authorization_code",
                },
            )
        ).json()
        if not token.get("ok"):
            raise SignInFailed(f"Slack refused the sign-in ({token.get('error', 'no reason')})")
        info = (
            await http.post(
                f"{base}/openid.connect.userInfo",
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
        ).json()
        if not info.get("ok"):
            raise SignInFailed(f"Slack refused the sign-in ({info.get('error', 'no reason')})")
        user_id = str(info.get("https://slack.com/user_id") or info["sub"])
        return Account("slack", user_id, str(info.get("name") or user_id))

    async def _discord(self, http: httpx.AsyncClient, code: str, redirect_uri: str) -> Account:
        base = self.api_base.rstrip("/")
        answer = await http.post(
            f"{base}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
            },
            auth=(self.client_id, self.client_secret),
        )
        token = answer.json()
        if answer.status_code != 200 or "access_token" not in token:
            raise SignInFailed(f"Discord refused the sign-in ({token.get('error', 'no reason')})")
        me_answer = await http.get(
            f"{base}/users/@me", headers={"Authorization": f"Bearer {token['access_token']}"}
        )
        if me_answer.status_code != 200:
            raise SignInFailed(f"Discord refused the sign-in (HTTP {me_answer.status_code})")
        me = me_answer.json()
        return Account("discord", str(me["id"]), str(me.get("global_name") or me["username"]))


def providers(settings: Settings) -> dict[str, Provider]:
    """The sign-in buttons this deployment can offer: those with a client id and secret."""
    found: dict[str, Provider] = {}
    d = settings.dashboard
    slack_id = d.slack_client_id or settings.slack.client_id
    slack_secret = d.slack_client_secret or settings.slack.client_secret
    if slack_id and slack_secret is not None:
        found["slack"] = Provider(
            "slack",
            "Slack",
            slack_id,
            slack_secret.get_secret_value(),
            d.slack_authorize_url,
            settings.slack.api_base_url,
        )
    discord_id = d.discord_client_id or settings.discord.application_id
    if discord_id and d.discord_client_secret is not None:
        found["discord"] = Provider(
            "discord",
            "Discord",
            discord_id,
            d.discord_client_secret.get_secret_value(),
            d.discord_authorize_url,
            settings.discord.api_base_url,
        )
    return found
