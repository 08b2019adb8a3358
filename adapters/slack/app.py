"""The Slack adapter: slack-bolt's AsyncApp in Socket Mode or HTTP mode, feeding the core.

Every listener acknowledges first and works after (bolt sends the ack as soon as ``ack()`` is
called; the rest of the listener runs on): the core handles the event, then the response is
rendered (a private reply through ``response_url`` or chat.postEphemeral, a form through
views.open with the invocation's trigger id, DM answers with chat.postMessage). A modal
submission is the exception Slack itself makes: its field errors travel in the ack
(``response_action: errors``), so the ack carries the core's outcome when it is quick, and a
"Checking…" view followed by views.update when it is not (:mod:`adapters.slack.forms`).

The directory is kept warm (:mod:`adapters.slack.directory`): every workspace's member list is
read at start (single-workspace mode) or when syncup first hears from it, and updated on
``team_join`` and ``user_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization.async_authorize import AsyncInstallationStoreAuthorize
from slack_bolt.oauth.async_callback_options import AsyncCallbackOptions, AsyncSuccessArgs
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import events as slack_events
from adapters.slack import forms, render
from adapters.slack.channels import ChannelRecorder
from adapters.slack.http import SlackAsgi, SlackRoutes
from adapters.slack.manifest import BOT_SCOPES
from adapters.slack.oauth import (
    ROTATE_MINUTES_BEFORE_EXPIRY,
    STATE_SECONDS,
    InstalledTokens,
    LateTokens,
    LaxStateCookie,
    SqlInstallationStore,
    SqlStateStore,
    TokenCipher,
    install_failed_page,
    installed_page,
)
from adapters.slack.port import PLATFORM, SlackPort, StaticTokens, TokenSource
from adapters.slack.shortcuts import SlackShortcuts
from bot import workspace_removal
from bot.chat import FormErrors, Message, OpenForm, Reply, Response, message
from bot.clock import Clock
from bot.config import ConfigError, Settings
from bot.events import Actor, InboundEvent
from bot.web.asgi import Mount
from storage.db import Database

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

Ack = Callable[..., Awaitable[None]]
SOCKET_CHECK_SECONDS = 30.0


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


class SlackAdapter:
    """Implements :class:`bot.app.Adapter`: ``port``, ``clock()`` and ``run(app)``; tests call
    :meth:`start` and :meth:`stop` around their own work instead of :meth:`run`."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.config = settings.slack
        self._clock = clock
        self.oauth = self.config.client_id is not None
        if self.oauth:
            missing = [
                key
                for key in ("client_secret", "signing_secret", "token_encryption_key")
                if getattr(self.config, key) is None
            ]
            if missing:
                raise ConfigError(
                    f"[slack] client_id is set (OAuth install), so {', '.join(missing)} must be "
                    "set too (SYNCUP_SLACK_...)."
                )
            if self.config.mode != "http":
                raise ConfigError(
                    '[slack] OAuth install (client_id) needs mode = "http": Slack redirects '
                    "browsers to /slack/oauth_redirect."
                )
            self.cipher = TokenCipher(_secret(self.config.token_encryption_key) or "")
            self.tokens: TokenSource = LateTokens()
        else:
            token = _secret(self.config.bot_token)
            if not token:
                raise ConfigError(
                    "[slack] needs bot_token (SYNCUP_SLACK_BOT_TOKEN) for one workspace, or "
                    "client_id, client_secret and token_encryption_key for OAuth installs."
                )
            self.tokens = StaticTokens(token)
        if self.config.mode == "socket" and self.config.app_token is None:
            raise ConfigError(
                '[slack] mode = "socket" needs app_token (SYNCUP_SLACK_APP_TOKEN, xapp-...), '
                'or use mode = "http" with signing_secret.'
            )
        if self.config.mode == "http" and self.config.signing_secret is None:
            raise ConfigError(
                '[slack] mode = "http" needs signing_secret (SYNCUP_SLACK_SIGNING_SECRET).'
            )
        if self.config.mode == "http" and not settings.web.enabled:
            raise ConfigError(
                '[slack] mode = "http" is served by the HTTP server: set [web] enabled = true.'
            )
        self.slack_port = SlackPort(
            self.tokens,
            api_base_url=self.config.api_base_url,
            profile_cache_seconds=self.config.profile_cache_seconds,
        )
        self.port = self.slack_port
        self.commands = slack_events.command_names(self.config.commands)
        self.debouncer = slack_events.ClickDebouncer()
        self.shortcuts = SlackShortcuts(self)
        self.ack_seconds = forms.ACK_SECONDS
        self._app: App | None = None
        self.bolt: AsyncApp | None = None
        self.installation_store: SqlInstallationStore | None = None
        self._socket: Any = None
        self._http = SlackRoutes(self)
        self._watchdog: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ready = False

    def clock(self) -> Clock | None:
        return self._clock

    @property
    def app(self) -> App:
        if self._app is None:
            raise RuntimeError("the Slack adapter is not running")
        return self._app

    # -- running ---------------------------------------------------------------------------

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
        self.channels = ChannelRecorder(app.db)
        self.bolt = self.build_bolt(app.db)
        if self.installation_store is not None:
            await self.installation_store.check_key()
        if self.config.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(
                self.bolt,
                _secret(self.config.app_token),
                web_client=AsyncWebClient(base_url=self.config.api_base_url),
            )
            await self._socket.connect_async()
            self._watchdog = asyncio.create_task(self._watch_socket(), name="slack-socket-watch")
        else:
            self._http.asgi = SlackAsgi(self)
            await app.web.start()  # the core's server; already listening under `syncup run`
        self.ready = True
        log.info("slack: connected in %s mode", self.config.mode)
        if not self.oauth:
            self._later(self._warm_own_workspace(), "slack member sync")

    async def _warm_own_workspace(self) -> None:
        """Single-workspace mode: read the workspace's members now, not at the first form."""
        client = await self.slack_port.client("")
        try:
            team = str((await client.auth_test()).get("team_id") or "")
        except SlackApiError as exc:
            log.warning("slack: auth.test failed (%s); members are read later", slack_error(exc))
            return
        if team:
            self.slack_port.directory.warm(team)

    async def stop(self) -> None:
        self.ready = False
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        await self._http.drain()  # requests in flight finish; new ones get 503
        await self.idle()
        await self.slack_port.directory.stop()

    async def _watch_socket(self) -> None:
        """Socket Mode can go quiet after a reconnect while the client still thinks it is
        connected (python-slack-sdk#1701): when pings stop coming back, reconnect."""
        while True:
            await asyncio.sleep(SOCKET_CHECK_SECONDS)
            client = self._socket.client if self._socket is not None else None
            if client is None or client.closed:
                return
            try:
                stale = await client.is_ping_pong_failing() or not await client.is_connected()
                if stale:
                    log.warning("slack: the Socket Mode connection went quiet; reconnecting")
                    await client.connect_to_new_endpoint(force=True)
            except Exception:
                log.exception("slack: checking the Socket Mode connection failed")

    async def idle(self) -> None:
        """Wait for the work listeners started after their acks (tests use this)."""
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def http_port(self) -> int:
        """The port of the core's HTTP server while this adapter serves HTTP mode, else 0."""
        serving = self.config.mode == "http" and self._app is not None and self._app.web.running
        return self._app.web.port if serving and self._app is not None else 0

    def routes(self) -> list[Mount]:
        """Slack's paths on the core's HTTP server (WebRoutes); none in Socket Mode."""
        return self._http.mounts() if self.config.mode == "http" else []

    # -- bolt --------------------------------------------------------------------------------

    def build_bolt(self, db: Database) -> AsyncApp:
        client = AsyncWebClient(base_url=self.config.api_base_url)
        kwargs: dict[str, Any] = {
            "signing_secret": _secret(self.config.signing_secret) or "",
            "request_verification_enabled": self.config.mode == "http",
            "process_before_response": False,
        }
        if self.oauth:
            store = SqlInstallationStore(db, self.cipher, self.config.client_id or "")
            self.installation_store = store
            assert isinstance(self.tokens, LateTokens)
            self.tokens.inner = InstalledTokens(
                store,
                client_id=self.config.client_id or "",
                client_secret=_secret(self.config.client_secret) or "",
                api_base_url=self.config.api_base_url,
            )
            oauth = AsyncOAuthSettings(
                client_id=self.config.client_id,
                client_secret=_secret(self.config.client_secret),
                scopes=list(BOT_SCOPES),
                installation_store=store,
                state_store=SqlStateStore(db, self._clock_or_system()),
                state_expiration_seconds=STATE_SECONDS,
                install_path=self.config.install_path,
                redirect_uri_path=self.config.redirect_path,
                callback_options=AsyncCallbackOptions(
                    success=self._installed, failure=install_failed_page
                ),
            )
            oauth.state_utils = self.state_cookie = LaxStateCookie(
                cookie_name=oauth.state_cookie_name, expiration_seconds=STATE_SECONDS
            )
            kwargs["oauth_settings"] = oauth
            kwargs["client"] = client
            # bolt's default authorize rotates tokens through slack.com; ours through the
            # configured api_base_url (GovSlack, a proxy, the tests' fake Slack).
            kwargs["authorize"] = AsyncInstallationStoreAuthorize(
                logger=log,
                installation_store=store,
                client_id=self.config.client_id,
                client_secret=_secret(self.config.client_secret),
                token_rotation_expiration_minutes=ROTATE_MINUTES_BEFORE_EXPIRY,
                client=client,
            )
        else:
            client.token = _secret(self.config.bot_token)
            kwargs["client"] = client
        bolt = AsyncApp(**kwargs)
        pattern = re.compile(".*")
        bolt.command(pattern)(self._on_command)
        bolt.action(pattern)(self._on_action)
        self.shortcuts.register(bolt)  # its view listener goes before the catch-all one
        bolt.view_submission(pattern)(self._on_view)
        bolt.view_closed(pattern)(self._on_view_closed)
        bolt.event("message")(self._on_message)
        bolt.event("app_uninstalled")(self._on_uninstalled)
        bolt.event("tokens_revoked")(self._on_tokens_revoked)
        bolt.event("app_home_opened")(self._ignore)
        bolt.event("team_join")(self._on_member)
        bolt.event("user_change")(self._on_member)
        bolt.error(self._on_error)
        return bolt

    def _clock_or_system(self) -> Clock:
        if self._app is not None:
            return self._app.clock
        from bot.clock import SystemClock

        return SystemClock()

    def _later(self, work: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(work)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("slack: %s failed", task.get_name(), exc_info=task.exception())

    async def _actor(self, team_id: str, user_id: str, fallback_name: str = "") -> Actor:
        self.slack_port.directory.warm(team_id)
        try:
            profile = await self.slack_port.profile(team_id, user_id)
        except Exception as exc:  # a profile is a nicety; the event still counts
            log.warning("slack: users.info for %s failed: %s", user_id, exc)
            profile = None
        return slack_events.actor(user_id, profile, fallback_name)

    async def _handle(self, event: InboundEvent) -> Response:
        return await self.app.core.handle(event)

    # -- slash commands ------------------------------------------------------------------

    async def _on_command(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        slash = str(body.get("command", "")).lower()
        name = self.commands.get(slash)
        if name is None or name not in self.app.core.specs:
            known = ", ".join(sorted(self._registered()))
            await ack(
                response_type="ephemeral",
                text=f"syncup does not handle {slash} yet. Its commands here: {known}.",
            )
            return
        await ack()
        self._later(self._command(body, name, client), f"slack {slash}")

    def _registered(self) -> list[str]:
        return [s for s, n in self.commands.items() if n in self.app.core.specs]

    async def _command(self, body: dict[str, Any], name: str, client: AsyncWebClient) -> None:
        team, domain = slack_events.team_of(body)
        who = await self._actor(team, str(body.get("user_id")), str(body.get("user_name", "")))
        await self.channels.record(
            team,
            domain,
            str(body.get("channel_id", "")),
            str(body.get("channel_name", "")),
            self.app.clock.now(),
        )
        event = slack_events.command_event(body, name, who)
        response = await self._handle(event)
        await self._render(event, response, client, body)

    # -- buttons and selects -------------------------------------------------------------------

    async def _on_action(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        self._later(self._action(body, client), "slack action")

    async def _action(self, body: dict[str, Any], client: AsyncWebClient) -> None:
        team, _ = slack_events.team_of(body)
        user = body.get("user") or {}
        who = await self._actor(team, str(user.get("id")), str(user.get("username", "")))
        for action in body.get("actions") or []:
            event = slack_events.action_event(body, action, who)
            if not self.debouncer.first(event):
                log.info("slack: double click on %s by %s ignored", event.action_id, who.user_id)
                continue
            response = await self._handle(event)
            await self._render(event, response, client, body)

    # -- modals ------------------------------------------------------------------------------

    async def _on_view(self, ack: Ack, body: dict[str, Any], client: AsyncWebClient) -> None:
        await self._answer_view(ack, body, client, self._view_work(body))

    async def _answer_view(
        self,
        ack: Ack,
        body: dict[str, Any],
        client: AsyncWebClient,
        work: Awaitable[tuple[InboundEvent, Response]],
    ) -> None:
        """Acknowledge within Slack's 3 s: with the core's outcome when it is quick, else with
        a "Checking…" view first and the outcome by views.update (:mod:`adapters.slack.forms`)."""
        task, done = await forms.race(work, self.ack_seconds)
        view = body.get("view") or {}
        if not done:
            await ack(response_action="update", view=forms.checking_view(view))
            self._later(self._finish_view(task, body, client), "slack form")
            return
        event, response = task.result()
        if isinstance(response, FormErrors):
            await ack(response_action="errors", errors=render.form_errors(view, response.errors))
            return
        if isinstance(response, OpenForm):
            try:
                follow = render.modal(response.form, event.origin.channel_id)
            except render.RenderError as exc:
                await ack()
                await self._private(event, _oops(exc), client, body)
                return
            await ack(response_action="update", view=follow)
            return
        await ack()
        if isinstance(response, Reply):
            self._later(self._private(event, response.message, client, body), "slack reply")

    async def _view_work(self, body: dict[str, Any]) -> tuple[InboundEvent, Response]:
        team, _ = slack_events.team_of(body)
        user = body.get("user") or {}
        who = await self._actor(team, str(user.get("id")), str(user.get("username", "")))
        event = slack_events.form_event(body, who)
        # The core looks up names it has not stored (the port's directory) as it resolves them.
        return event, await self._handle(event)

    async def _finish_view(
        self, task: asyncio.Task[tuple[InboundEvent, Response]], body: dict[str, Any], client: Any
    ) -> None:
        event, response = await task
        view = body.get("view") or {}
        try:
            follow = forms.outcome_view(view, response, event.origin.channel_id)
        except render.RenderError as exc:
            follow = forms.result_view(view, _oops(exc))
        try:
            await client.views_update(view_id=view.get("id"), view=follow)
        except SlackApiError as exc:  # closed meanwhile: the private reply below still tells
            log.info("slack: views.update after a form failed: %s", slack_error(exc))
            if isinstance(response, FormErrors):
                note = message("Your form was not saved: " + " ".join(response.errors.values()))
                await self._private(event, note, client, body)
        if isinstance(response, Reply):
            await self._private(event, response.message, client, body)

    async def _on_view_closed(self, ack: Ack) -> None:
        await ack()

    # -- events ------------------------------------------------------------------------------

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        # Events are acknowledged by bolt before their listener runs; the work is tracked
        # like every other post-ack work (``idle``).
        if slack_events.is_member_dm(event):
            self._later(self._message(body, event), "slack dm")

    async def _message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        team = str(body.get("team_id") or event.get("team") or "")
        who = await self._actor(team, str(event["user"]))
        self.slack_port.remember_dm(team, who.user_id, str(event.get("channel", "")))
        dm = slack_events.dm_event(body, who)
        response = await self._handle(dm)
        if isinstance(response, Reply):
            client = await self.slack_port.client(team)
            await self._post_parts(client, str(event.get("channel")), response.message)
        elif isinstance(response, OpenForm):
            log.warning("slack: a DM answer cannot open a form (no trigger id); ignored")

    async def _on_member(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """``team_join`` / ``user_change``: keep the member list warm (no API call)."""
        team = str(body.get("team_id") or "")
        user = event.get("user")
        if team and isinstance(user, dict):
            self.slack_port.directory.member_event(team, user)

    async def _on_uninstalled(self, body: dict[str, Any]) -> None:
        self._later(self._gone(str(body.get("team_id", "")), body.get("enterprise_id")), "gone")

    async def _on_tokens_revoked(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        tokens = event.get("tokens") or {}
        if tokens.get("bot"):
            team = str(body.get("team_id", ""))
            self._later(self._gone(team, body.get("enterprise_id")), "gone")

    async def _gone(self, team: str, enterprise_id: Any) -> None:
        now = self.app.clock.now()
        known = await workspace_removal.mark_uninstalled(self.app.db, PLATFORM, team, now)
        if self.installation_store is not None:
            await self.installation_store.async_delete_all(
                enterprise_id=enterprise_id or None, team_id=team
            )
        self.slack_port.forget(team)
        log.warning(
            "slack: removed from workspace %s; its data is deleted in %d days unless reinstalled",
            team,
            self.config.uninstall_grace_days,
        )
        if known:
            await self.app.scheduler.reconcile()

    async def _ignore(self) -> None:
        return None

    async def _on_error(self, error: Exception, body: dict[str, Any]) -> BoltResponse | None:
        log.error("slack: listener failed: %s", error, exc_info=error)
        return None

    # -- OAuth ---------------------------------------------------------------------------------

    async def _installed(self, args: AsyncSuccessArgs) -> BoltResponse:
        return await installed_page(self.app.db, self.state_cookie, args)

    # -- responses ---------------------------------------------------------------------------

    async def _render(
        self,
        event: InboundEvent,
        response: Response,
        client: AsyncWebClient,
        body: dict[str, Any],
    ) -> None:
        if isinstance(response, Reply):
            await self._private(event, response.message, client, body)
        elif isinstance(response, OpenForm):
            try:
                view = render.modal(response.form, event.origin.channel_id)
            except render.RenderError as exc:
                await self._private(event, _oops(exc), client, body)
                return
            trigger = body.get("trigger_id")
            try:
                await client.views_open(trigger_id=trigger, view=view)
            except SlackApiError as exc:
                log.warning("slack: views.open failed: %s", slack_error(exc))
                note = message("Slack closed the window for that form before it opened; try again.")
                await self._private(event, note, client, body)
        elif isinstance(response, FormErrors):
            note = message(*response.errors.values())
            await self._private(event, note, client, body)

    async def _private(
        self, event: InboundEvent, msg: Message, client: AsyncWebClient, body: dict[str, Any]
    ) -> None:
        """Only the person who acted sees it: through the invocation's response_url, else
        ephemeral in the channel, else in their DM."""
        parts = render.messages(msg)
        response_url = body.get("response_url")
        if response_url:
            from slack_sdk.webhook.async_client import AsyncWebhookClient

            hook = AsyncWebhookClient(response_url)
            for part in parts:
                await hook.send(
                    text=part.text,
                    blocks=part.blocks,
                    response_type="ephemeral",
                    replace_original=False,
                )
            return
        team = event.origin.workspace_id
        user = event.actor.user_id
        channel = event.origin.channel_id
        web = await self.slack_port.client(team)
        if channel and not channel.startswith("D"):
            try:
                for part in parts:
                    await web.chat_postEphemeral(
                        channel=channel, user=user, text=part.text, blocks=part.blocks
                    )
                return
            except SlackApiError as exc:
                log.info("slack: ephemeral reply failed (%s); sending a DM", slack_error(exc))
        dm = channel if channel and channel.startswith("D") else None
        if dm is None:
            dm = await self.slack_port.dm_channel(web, team, user)
        await self._post_parts(web, dm, msg)

    async def _post_parts(self, client: AsyncWebClient, channel: str, msg: Message) -> None:
        for part in render.messages(msg):
            await client.chat_postMessage(
                channel=channel, text=part.text, blocks=part.blocks, unfurl_links=False
            )


def slack_error(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else {}
    return str(data.get("error")) if isinstance(data, dict) else str(exc)


def _oops(exc: Exception) -> Message:
    return message(f"Slack cannot show that: {exc}. Please tell whoever runs syncup.")
