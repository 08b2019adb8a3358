"""Multi-workspace installs: bolt's OAuth flow over our own tables, tokens encrypted at rest.

:class:`SqlInstallationStore` implements slack_sdk's ``AsyncInstallationStore`` on the async
engine of :class:`storage.db.Database` (``storage.slack_installs``); every token and refresh token
is encrypted with Fernet under ``[slack] token_encryption_key`` before it is written.
:class:`SqlStateStore` keeps the one-use OAuth ``state``. :class:`InstalledTokens` gives the
delivery port a workspace's bot token, rotating it first (single-use refresh token, saved at
once) when it expires within two hours, as bolt does for inbound requests.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from datetime import UTC, datetime, timedelta
from logging import Logger
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from slack_bolt.oauth.async_callback_options import AsyncFailureArgs, AsyncSuccessArgs
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_utils import OAuthStateUtils
from slack_sdk.oauth.token_rotation.async_rotator import AsyncTokenRotator
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, select

from bot import workspace_removal
from bot.clock import Clock
from bot.config import ConfigError
from bot.port import PermanentDeliveryError
from storage.db import Database
from storage.slack_installs import SlackBot, SlackInstallation, SlackOAuthState

log = logging.getLogger(__name__)

ROTATE_MINUTES_BEFORE_EXPIRY = 120
STATE_SECONDS = 600


class TokenCipher:
    """Fernet over the configured key; a wrong key fails loudly rather than yielding junk."""

    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except (ValueError, TypeError):
            raise ConfigError(
                "[slack] token_encryption_key must be a Fernet key (32 url-safe base64 bytes)"
            ) from None

    def encrypt(self, value: str | None) -> str | None:
        return None if value is None else self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return self._fernet.decrypt(value.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("a stored Slack token does not decrypt with this key") from exc


def _when(value: float | int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _stamp(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


class SqlInstallationStore(AsyncInstallationStore):
    """Lookups read in a snapshot (``Database.read``), never in a write transaction: the core
    asks for a token (a directory look-up) while its own transaction holds SQLite's writer
    lock, and waiting for that lock there would wait forever."""

    def __init__(self, db: Database, cipher: TokenCipher, client_id: str) -> None:
        self.db = db
        self.cipher = cipher
        self.client_id = client_id
        self._logger = logging.getLogger(__name__)

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_save(self, installation: Installation) -> None:
        enc = self.cipher.encrypt
        async with self.db.transaction() as session:
            session.add(
                SlackInstallation(
                    client_id=self.client_id,
                    app_id=installation.app_id or "",
                    enterprise_id=installation.enterprise_id,
                    enterprise_name=installation.enterprise_name,
                    enterprise_url=installation.enterprise_url,
                    team_id=installation.team_id,
                    team_name=installation.team_name,
                    bot_token=enc(installation.bot_token),
                    bot_id=installation.bot_id,
                    bot_user_id=installation.bot_user_id,
                    bot_scopes=",".join(installation.bot_scopes or []),
                    bot_refresh_token=enc(installation.bot_refresh_token),
                    bot_token_expires_at=_when(installation.bot_token_expires_at),
                    user_id=installation.user_id,
                    user_token=enc(installation.user_token),
                    user_scopes=",".join(installation.user_scopes or []),
                    user_refresh_token=enc(installation.user_refresh_token),
                    user_token_expires_at=_when(installation.user_token_expires_at),
                    is_enterprise_install=bool(installation.is_enterprise_install),
                    token_type=installation.token_type,
                    installed_at=_when(installation.installed_at) or datetime.now(UTC),
                )
            )
        if installation.bot_token is not None:
            await self.async_save_bot(installation.to_bot())

    async def async_save_bot(self, bot: Bot) -> None:
        enc = self.cipher.encrypt
        async with self.db.transaction() as session:
            session.add(
                SlackBot(
                    client_id=self.client_id,
                    app_id=bot.app_id or "",
                    enterprise_id=bot.enterprise_id,
                    enterprise_name=bot.enterprise_name,
                    team_id=bot.team_id,
                    team_name=bot.team_name,
                    bot_token=enc(bot.bot_token),
                    bot_id=bot.bot_id,
                    bot_user_id=bot.bot_user_id,
                    bot_scopes=",".join(bot.bot_scopes or []),
                    bot_refresh_token=enc(bot.bot_refresh_token),
                    bot_token_expires_at=_when(bot.bot_token_expires_at),
                    is_enterprise_install=bool(bot.is_enterprise_install),
                    installed_at=_when(bot.installed_at) or datetime.now(UTC),
                )
            )

    def _scope(
        self,
        model: Any,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None,
    ) -> list[Any]:
        conditions = [model.client_id == self.client_id]
        if is_enterprise_install or (enterprise_id and not team_id):
            conditions.append(model.enterprise_id == enterprise_id)
        else:
            conditions.append(model.team_id == team_id)
            if enterprise_id:
                conditions.append(model.enterprise_id == enterprise_id)
        return conditions

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        async with self.db.read() as session:
            row = await session.scalar(
                select(SlackBot)
                .where(*self._scope(SlackBot, enterprise_id, team_id, is_enterprise_install))
                .order_by(SlackBot.installed_at.desc(), SlackBot.id.desc())
                .limit(1)
            )
            if row is not None:  # read() rolls back, which would expire it
                session.expunge(row)
        if row is None or row.bot_token is None:
            return None
        dec = self.cipher.decrypt
        return Bot(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            team_id=row.team_id,
            team_name=row.team_name,
            bot_token=dec(row.bot_token) or "",
            bot_id=row.bot_id or "",
            bot_user_id=row.bot_user_id or "",
            bot_scopes=row.bot_scopes or "",
            bot_refresh_token=dec(row.bot_refresh_token),
            bot_token_expires_at=_stamp(row.bot_token_expires_at),
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.installed_at.timestamp(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        conditions = self._scope(SlackInstallation, enterprise_id, team_id, is_enterprise_install)
        if user_id is not None:
            conditions.append(SlackInstallation.user_id == user_id)
        async with self.db.read() as session:
            row = await session.scalar(
                select(SlackInstallation)
                .where(*conditions)
                .order_by(SlackInstallation.installed_at.desc(), SlackInstallation.id.desc())
                .limit(1)
            )
            if row is not None:  # read() rolls back, which would expire it
                session.expunge(row)
        if row is None:
            return None
        dec = self.cipher.decrypt
        installation = Installation(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            enterprise_url=row.enterprise_url,
            team_id=row.team_id,
            team_name=row.team_name,
            bot_token=dec(row.bot_token),
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes or "",
            bot_refresh_token=dec(row.bot_refresh_token),
            bot_token_expires_at=_stamp(row.bot_token_expires_at),
            user_id=row.user_id,
            user_token=dec(row.user_token),
            user_scopes=row.user_scopes or "",
            user_refresh_token=dec(row.user_refresh_token),
            user_token_expires_at=_stamp(row.user_token_expires_at),
            is_enterprise_install=row.is_enterprise_install,
            token_type=row.token_type,
            installed_at=row.installed_at.timestamp(),
        )
        if user_id is not None:
            # The newest bot token belongs with any user's installation (bolt's own stores).
            latest = await self.async_find_bot(
                enterprise_id=enterprise_id,
                team_id=team_id,
                is_enterprise_install=is_enterprise_install,
            )
            if latest is not None and latest.bot_token != installation.bot_token:
                installation.bot_token = latest.bot_token
                installation.bot_refresh_token = latest.bot_refresh_token
                installation.bot_token_expires_at = latest.bot_token_expires_at
        return installation

    async def check_key(self) -> None:
        """Decrypt the newest stored bot token, so that a changed key stops the start with a
        configuration error instead of failing every request later."""
        async with self.db.read() as session:
            row = await session.scalar(
                select(SlackBot)
                .where(SlackBot.client_id == self.client_id, SlackBot.bot_token.is_not(None))
                .order_by(SlackBot.installed_at.desc(), SlackBot.id.desc())
                .limit(1)
            )
            if row is not None:  # read() rolls back, which would expire it
                session.expunge(row)
        if row is None:
            return
        try:
            self.cipher.decrypt(row.bot_token)
        except ValueError:
            raise ConfigError(
                f"[slack] token_encryption_key does not decrypt the stored token of workspace "
                f"{row.team_id or row.enterprise_id}: it is not the key the tokens were "
                "encrypted with. Put back that key (SYNCUP_SLACK_TOKEN_ENCRYPTION_KEY), or "
                "delete the installations and install the app again."
            ) from None

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        async with self.db.transaction() as session:
            await session.execute(
                delete(SlackBot).where(*self._scope(SlackBot, enterprise_id, team_id, False))
            )

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        conditions = self._scope(SlackInstallation, enterprise_id, team_id, False)
        if user_id is not None:
            conditions.append(SlackInstallation.user_id == user_id)
        async with self.db.transaction() as session:
            await session.execute(delete(SlackInstallation).where(*conditions))

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_bot(enterprise_id=enterprise_id, team_id=team_id)
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)


class LaxStateCookie(OAuthStateUtils):
    """bolt's state cookie, plus ``SameSite=Lax``: sent on Slack's top-level redirect back to
    us, never on a cross-site request from another page."""

    def build_set_cookie_for_new_state(self, state: str) -> str:
        return super().build_set_cookie_for_new_state(state) + "; SameSite=Lax"

    def build_set_cookie_for_deletion(self) -> str:
        return super().build_set_cookie_for_deletion() + "; SameSite=Lax"


class SqlStateStore(AsyncOAuthStateStore):
    def __init__(self, db: Database, clock: Clock, expiration_seconds: int = STATE_SECONDS) -> None:
        self.db = db
        self.clock = clock
        self.expiration = timedelta(seconds=expiration_seconds)
        self._logger = logging.getLogger(__name__)

    @property
    def logger(self) -> Logger:
        return self._logger

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        async with self.db.transaction() as session:
            session.add(SlackOAuthState(state=state, expire_at=self.clock.now() + self.expiration))
        return state

    async def async_consume(self, state: str) -> bool:
        async with self.db.transaction() as session:
            row = await session.scalar(
                select(SlackOAuthState).where(SlackOAuthState.state == state)
            )
            if row is None:
                return False
            await session.delete(row)
            return row.expire_at > self.clock.now()


class InstalledTokens:
    """The delivery port's tokens in OAuth mode, rotated before they expire."""

    def __init__(
        self,
        store: SqlInstallationStore,
        *,
        client_id: str,
        client_secret: str,
        api_base_url: str,
    ) -> None:
        self.store = store
        self.rotator = AsyncTokenRotator(
            client_id=client_id,
            client_secret=client_secret,
            client=AsyncWebClient(base_url=api_base_url),
        )
        self._lock = asyncio.Lock()

    async def bot_token(self, team_id: str) -> str:
        async with self._lock:  # refresh tokens are single-use: one rotation at a time
            bot = await self.store.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None:
                raise PermanentDeliveryError(f"slack: workspace {team_id} is not installed")
            if bot.bot_refresh_token and bot.bot_token_expires_at is not None:
                rotated = await self.rotator.perform_bot_token_rotation(
                    bot=bot, minutes_before_expiration=ROTATE_MINUTES_BEFORE_EXPIRY
                )
                if rotated is not None:
                    await self.store.async_save_bot(rotated)
                    log.info("slack: rotated the bot token of %s", team_id)
                    bot = rotated
            return bot.bot_token


# -- the pages a browser sees at the end of an install -----------------------------------------


async def installed_page(
    db: Database, cookie: OAuthStateUtils, args: AsyncSuccessArgs
) -> BoltResponse:
    installation = args.installation
    if installation.team_id:
        await workspace_removal.mark_installed(db, "slack", installation.team_id)
    page = (
        "<html><body><h1>syncup is installed</h1><p>Type <code>/syncup help</code> in "
        "Slack to start.</p></body></html>"
    )
    # The state is spent: the browser forgets its cookie.
    headers = {
        "Content-Type": "text/html",
        "Set-Cookie": cookie.build_set_cookie_for_deletion(),
    }
    return BoltResponse(status=200, body=page, headers=headers)


async def install_failed_page(args: AsyncFailureArgs) -> BoltResponse:
    log.warning("slack: install failed: %s", args.reason)
    reason = html.escape(args.reason)
    page = (
        "<html><body><h1>syncup was not installed</h1><p>"
        f"{reason}. Try again from the install page.</p></body></html>"
    )
    return BoltResponse(
        status=args.suggested_status_code, body=page, headers={"Content-Type": "text/html"}
    )


class LateTokens:
    """OAuth tokens come from the installation store, built once the database is known."""

    inner: InstalledTokens | None = None

    async def bot_token(self, team_id: str) -> str:
        if self.inner is None:
            raise RuntimeError("the Slack adapter has not started")
        return await self.inner.bot_token(team_id)
