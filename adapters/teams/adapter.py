"""The Microsoft Teams adapter: the Teams SDK's ``App`` behind ``POST /api/messages`` on the
core's HTTP server, the outbox port over the SDK's connector client. See docs/teams.md."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from microsoft_teams.api import ApiClient
from microsoft_teams.api.auth.cloud_environment import PUBLIC, CloudEnvironment, with_overrides
from microsoft_teams.api.auth.credentials import TokenProvider
from microsoft_teams.apps import App as TeamsApp

from adapters.teams import installs
from adapters.teams.http import MESSAGES_PATH, AsgiServerAdapter
from adapters.teams.ids import member_key
from adapters.teams.inbound import Activity, Inbound
from adapters.teams.port import TeamsPort
from adapters.teams.refs import CHANNEL, MEMBER, PLATFORM, Reference, References
from adapters.teams.tokens import CachedTokens
from bot.clock import Clock
from bot.config import ConfigError, Settings, TeamsSection
from bot.web.asgi import Mount
from bot.workspace_removal import mark_installed, mark_uninstalled

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


def cloud_for(config: TeamsSection) -> CloudEnvironment:
    """The public cloud, with the endpoints ``[teams]`` changes (a sovereign cloud, a test)."""
    return with_overrides(
        PUBLIC,
        openid_metadata_url=config.openid_metadata_url,
        token_issuer=config.token_issuer,
        login_endpoint=config.login_endpoint,
    )


class TeamsAdapter:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        token: TokenProvider | None = None,
    ) -> None:
        config = settings.teams
        if not config.app_id or not config.app_id.strip():
            raise ConfigError(
                "[teams] app_id is not set: set SYNCUP_TEAMS_APP_ID to the Azure Bot's Microsoft "
                "App ID. See docs/teams.md."
            )
        secret = config.app_password.get_secret_value() if config.app_password else ""
        if not secret.strip() and token is None:
            raise ConfigError(
                "[teams] app_password is not set: set SYNCUP_TEAMS_APP_PASSWORD to a client "
                "secret of the bot's app registration (Certificates & secrets). See docs/teams.md."
            )
        self.settings = settings
        self.config = config
        self._clock = clock
        self.cloud = cloud_for(config)
        self.http = AsgiServerAdapter(settings.http.max_body_bytes, list(config.allowed_tenants))
        options: dict[str, Any] = {
            "client_id": config.app_id.strip(),
            "tenant_id": config.tenant_id,
            "cloud": self.cloud,
            "service_url": config.service_url,
            "http_server_adapter": self.http,
            "messaging_endpoint": MESSAGES_PATH,
            # Explicit: the SDK would otherwise read DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS.
            "dangerously_allow_unauthenticated_requests": False,
            "state": False,
        }
        if token is not None:
            options["token"] = CachedTokens(token)
        else:
            options["client_secret"] = secret.strip()
        self.sdk = TeamsApp(**options)
        self.refs = References()
        self._apis: dict[str, ApiClient] = {}
        self.port = TeamsPort(self.api_for, self.refs, now=self._now)
        self.inbound: Inbound | None = None
        self.ready = False
        self._stopped = asyncio.Event()
        self._app: App | None = None
        self._register()

    def clock(self) -> Clock | None:
        return self._clock

    def _now(self) -> Any:
        assert self._app is not None
        return self._app.clock.now()

    def api_for(self, service_url: str) -> ApiClient:
        """One connector client per service URL (Teams gives one per region)."""
        url = service_url.rstrip("/")
        api = self._apis.get(url)
        if api is None:
            api = ApiClient(
                url,
                self.sdk.http_client.clone(),
                cloud=self.cloud,
                token_provider=self.sdk.token_provider,
            )
            self._apis[url] = api
        return api

    def routes(self) -> list[Mount]:
        return self.http.mounts()

    # -- running ---------------------------------------------------------------------------------

    async def run(self, app: App) -> int:
        await self.start(app)
        try:
            await self._stopped.wait()
        finally:
            await self.stop()
        return 0

    def request_stop(self) -> None:
        self._stopped.set()

    async def start(self, app: App) -> None:
        self._app = app
        self.refs.db = app.db
        self.inbound = Inbound(
            app.core, app.clock, self.refs, self.port, bot_name=self.config.bot_name
        )
        await self.sdk.initialize()
        self.http.serving = True
        await app.web.start()  # the core's server; already listening under `syncup run`
        self.ready = True
        log.info("teams: serving %s", MESSAGES_PATH)

    async def stop(self) -> None:
        self.ready = False
        await self.http.drain()
        await self.refs.settled()

    @property
    def http_port(self) -> int:
        app = self._app
        return app.web.port if app is not None and app.web.running else 0

    # -- the SDK's handlers ----------------------------------------------------------------------

    def _register(self) -> None:
        sdk = self.sdk

        @sdk.on_message
        async def message(ctx: Any) -> None:
            assert self.inbound is not None
            await self.inbound.message(_raw(ctx.activity))

        @sdk.on_card_action
        async def card_action(ctx: Any) -> Any:
            assert self.inbound is not None
            return await self.inbound.card_action(_raw(ctx.activity))

        @sdk.on_conversation_update
        async def conversation_update(ctx: Any) -> None:
            await self._installed(_raw(ctx.activity))

        @sdk.on_installation_update
        async def installation_update(ctx: Any) -> None:
            await self._installed(_raw(ctx.activity))

    async def _installed(self, raw: dict[str, Any]) -> None:
        """The bot added to or removed from a team, a chat or a member's personal scope, or
        members added: keep their conversation references (so their DMs can be sent), and
        track where the app is installed (:mod:`adapters.teams.installs`)."""
        app = self._app
        assert app is not None and self.inbound is not None
        activity = Activity(raw)
        if not activity.tenant or not activity.service_url:
            return
        bot = str(activity.recipient.get("id") or "")
        now = app.clock.now()
        change = installs.change_of(raw)
        scope = installs.scope_of(activity)
        if change == "remove":
            if scope is not None:
                await self._removed(activity, scope)
            return
        await self.inbound.remember(activity)
        added = [m for m in raw.get("membersAdded") or [] if isinstance(m, dict)]
        if change == "add":
            await mark_installed(app.db, PLATFORM, activity.tenant)
            if scope is not None:
                await installs.added(self.refs, activity, scope, now)
            await installs.first_admin(app.db, activity.tenant, activity.actor(), now)
            team = activity.channel_data.get("team") or {}
            if isinstance(team, dict) and team.get("id"):
                name = str(team.get("name") or "General")
                ref = Reference(activity.service_url, str(team["id"]), str(team["id"]), name)
                await self.refs.remember(activity.tenant, CHANNEL, str(team["id"]), ref, now)
        for member in added:
            aad = member.get("aadObjectId")
            if not aad or member.get("id") == bot:
                continue
            ref = Reference(
                activity.service_url, str(member.get("id")), None, str(member.get("name") or "")
            )
            await self.refs.remember(activity.tenant, MEMBER, member_key(str(aad)), ref, now)

    async def _removed(self, activity: Activity, scope: str) -> None:
        app = self._app
        assert app is not None
        now = app.clock.now()
        if not await installs.removed(self.refs, activity, scope, now):
            log.info(
                "teams: removed from %s in tenant %s; still installed elsewhere",
                scope,
                activity.tenant,
            )
            return
        known = await mark_uninstalled(app.db, PLATFORM, activity.tenant, now)
        log.warning(
            "teams: removed from tenant %s everywhere; its data is deleted in %d days unless "
            "syncup is added again",
            activity.tenant,
            app.workspace_removal.grace.days,
        )
        if known:
            await app.scheduler.reconcile()


def _raw(activity: Any) -> dict[str, Any]:
    """The activity as Teams sent it (camelCase JSON), whatever model the SDK parsed it into."""
    dumped: dict[str, Any] = activity.model_dump(by_alias=True, exclude_none=True, mode="json")
    return dumped
