"""The dashboard's ASGI app: sign-in, the pages of a workspace, and the blocker actions.

Every path under ``/`` that no other mount takes lands here (bot.web.asgi.WebApp's fallback).
A page of workspace ``/w/<id>/...`` is answered only to a signed-in member of that workspace;
anyone else gets 403 and a page that names nothing of it. State changes are POSTs that carry
the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from bot.charts import render_svg
from bot.clock import Clock
from bot.config import Settings
from bot.errors import PermissionDenied, UserError
from bot.web.asgi import Receive, Scope, Send
from bot.web.dashboard import access, pages
from bot.web.dashboard.http import BadRequest, Request, Response, redirect
from bot.web.dashboard.limits import AttemptLimiter
from bot.web.dashboard.oauth import Account, SignInFailed, providers
from bot.web.dashboard.pages.context import NotFound, PageContext
from bot.web.dashboard.sessions import (
    PRE_COOKIE,
    PRE_SECONDS,
    SESSION_COOKIE,
    Session,
    Signer,
    same,
)
from bot.webhooks.keys import KeyUnavailable, find_key
from storage import web_sessions
from storage.db import Database
from storage.models import Member, Workspace

log = logging.getLogger(__name__)

WORKSPACE_PAGE = re.compile(r"^/w/(\d{1,18})/([a-z]*)$")
BLOCKER_ACTION = re.compile(r"^/w/(\d{1,18})/blockers/(\d{1,18})/(acknowledge|resolve)$")
CHART = re.compile(r"^/w/(\d{1,18})/charts/(heatmap|pulse)\.svg$")
OAUTH_START = re.compile(r"^/login/(slack|discord)$")
OAUTH_CALLBACK = re.compile(r"^/login/(slack|discord)/callback$")
LINK_PAGE = re.compile(r"^/login/link/([A-Za-z0-9_-]{10,100})$")
STYLESHEET = files("bot.web.dashboard").joinpath("static/dashboard.css").read_bytes()


class Forbidden(Exception):
    pass


class Dashboard:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        clock: Clock,
        *,
        base_url: Callable[[], str],
        core: Any = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.core = core  # bot.core.Core: its listeners (cards, webhooks) and wake-ups
        self.base_url = base_url
        self.limiter = AttemptLimiter(
            settings.dashboard.login_attempts_per_ip, settings.dashboard.login_attempts_per_account
        )
        self.templates = Environment(
            loader=PackageLoader("bot.web.dashboard", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
        )
        self._signer: Signer | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def signer(self) -> Signer:
        if self._signer is None:
            seconds = int(self.settings.dashboard.session_hours * 3600)
            self._signer = Signer(find_key(self.settings), seconds)
        return self._signer

    def secure(self, request: Request) -> bool:
        return request.secure or self.settings.web.public_url.startswith("https://")

    def page(self, template: str, status: int = 200, **values: Any) -> Response:
        html = self.templates.get_template(template).render(**values)
        return Response(status=status, body=html.encode())

    def error(
        self, status: int, title: str, detail: str, session: Session | None = None
    ) -> Response:
        return self.page("error.html", status, title=title, detail=detail, viewer=session)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request.of(scope, receive)
        try:
            response = await self.dispatch(request)
        except KeyUnavailable as exc:
            log.warning("dashboard: no key for session cookies: %s", exc)
            response = self.error(
                503,
                "Dashboard not configured",
                "The dashboard signs its cookies with [security] secret_key; the operator must "
                "set it (see docs/dashboard.md).",
            )
        except BadRequest as exc:
            response = self.error(400, "Bad request", str(exc))
        except Exception:
            ref = uuid.uuid4().hex[:8]
            log.exception("dashboard: %s %s failed (ref %s)", request.method, request.path, ref)
            response = self.error(
                500, "Something went wrong", f"syncup could not show this page (ref {ref})."
            )
        await response.send(send)

    async def dispatch(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == "/static/dashboard.css" and method == "GET":
            return Response(body=STYLESHEET, content_type="text/css; charset=utf-8")
        signer = self.signer()
        session = signer.read_session(request.cookies.get(SESSION_COOKIE))
        if path == "/login" and method == "GET":
            return self.login_page(request, session)
        if path == "/login/link" and method == "POST":
            return await self.redeem_link(request)
        if path == "/logout" and method == "POST":
            return await self.logout(request, session)
        if (found := LINK_PAGE.match(path)) and method == "GET":
            return await self.link_page(request, found.group(1))
        if (found := OAUTH_START.match(path)) and method == "GET":
            return self.oauth_start(request, found.group(1))
        if (found := OAUTH_CALLBACK.match(path)) and method == "GET":
            return await self.oauth_callback(request, found.group(1))
        known = (
            path == "/"
            or WORKSPACE_PAGE.match(path)
            or BLOCKER_ACTION.match(path)
            or CHART.match(path)
        )
        if not known:
            return self.error(404, "Page not found", "There is no such page.", session)
        if session is None:
            if method != "GET":
                return self.error(403, "Signed out", "Sign in again, then repeat.", None)
            return redirect("/login")
        try:
            if path == "/" and method == "GET":
                return await self.home(session)
            if (found := WORKSPACE_PAGE.match(path)) and method == "GET":
                return await self.workspace_page(
                    request, session, int(found.group(1)), found.group(2)
                )
            if (found := CHART.match(path)) and method == "GET":
                return await self.chart(request, session, int(found.group(1)), found.group(2))
            if (found := BLOCKER_ACTION.match(path)) and method == "POST":
                return await self.blocker_action(
                    request, session, int(found.group(1)), int(found.group(2)), found.group(3)
                )
        except Forbidden:
            return self.error(
                403, "Not yours to see", "You are not a member of that workspace.", session
            )
        except NotFound as exc:
            return self.error(404, "Not found", str(exc), session)
        return self.error(405, "Method not allowed", "That page takes no such request.", session)

    # -- sign-in -----------------------------------------------------------------------------

    def login_page(self, request: Request, session: Session | None) -> Response:
        return self.page(
            "login.html",
            viewer=session,
            providers=sorted(providers(self.settings).values(), key=lambda p: p.label),
            problem=request.query.get("problem", "")[:200],
        )

    def _signed_in(self, request: Request, account: Account) -> Response:
        signer = self.signer()
        response = redirect("/")
        response.set_cookie(
            SESSION_COOKIE,
            signer.session_cookie(account.platform, account.user_id, account.name),
            max_age=signer.session_seconds,
            secure=self.secure(request),
        )
        response.clear_cookie(PRE_COOKIE, secure=self.secure(request))
        log.info("dashboard: %s account %s signed in", account.platform, account.user_id)
        return response

    async def link_page(self, request: Request, token: str) -> Response:
        """A page with a button, not a sign-in on GET: a chat app's link preview would spend
        the link before its owner opened it."""
        csrf = secrets.token_urlsafe(24)
        response = self.page("link.html", token=token, csrf=csrf, viewer=None)
        response.set_cookie(
            PRE_COOKIE,
            self.signer().pre_cookie(csrf, "link"),
            max_age=PRE_SECONDS,
            secure=self.secure(request),
        )
        return response

    async def redeem_link(self, request: Request) -> Response:
        form = await request.form()
        pre = self.signer().read_pre(request.cookies.get(PRE_COOKIE))
        if pre is None or pre.get("p") != "link" or not same(pre.get("s"), form.get("csrf")):
            return self.error(403, "Sign-in refused", "Open the sign-in link again.")
        if not self.limiter.allow(request.ip, None):
            return self.error(429, "Too many attempts", "Wait a few minutes, then try again.")
        token = form.get("token", "")
        now = self.clock.now()
        async with self.db.transaction() as session:
            member_id = await web_sessions.redeem(session, token, now)
            state = (
                "valid"
                if member_id is not None
                else await web_sessions.link_state(session, token, now)
            )
            member = await session.get(Member, member_id) if member_id is not None else None
            workspace = (
                await session.get(Workspace, member.workspace_id) if member is not None else None
            )
        if member is None or workspace is None:
            why = {
                "used": "This sign-in link was used already; each link works once.",
                "expired": "This sign-in link has expired.",
            }.get(state, "This sign-in link is not valid.")
            why += " Ask for a new one: syncup web login-link --member <you>."
            return self.error(403, "Sign-in refused", why)
        account = Account(workspace.platform, member.platform_user_id, member.display_name)
        if not self.limiter.allow(request.ip, f"{account.platform}:{account.user_id}"):
            return self.error(429, "Too many attempts", "Wait a few minutes, then try again.")
        return self._signed_in(request, account)

    def _redirect_uri(self, platform: str) -> str:
        return f"{self.base_url().rstrip('/')}/login/{platform}/callback"

    def oauth_start(self, request: Request, platform: str) -> Response:
        provider = providers(self.settings).get(platform)
        if provider is None:
            return self.error(404, "Not available", f"Sign-in with {platform} is not set up.")
        state = secrets.token_urlsafe(24)
        response = redirect(provider.authorize(self._redirect_uri(platform), state), 302)
        response.set_cookie(
            PRE_COOKIE,
            self.signer().pre_cookie(state, platform),
            max_age=PRE_SECONDS,
            secure=self.secure(request),
        )
        return response

    async def oauth_callback(self, request: Request, platform: str) -> Response:
        provider = providers(self.settings).get(platform)
        if provider is None:
            return self.error(404, "Not available", f"Sign-in with {platform} is not set up.")
        pre = self.signer().read_pre(request.cookies.get(PRE_COOKIE))
        state = request.query.get("state")
        if pre is None or pre.get("p") != platform or not same(pre.get("s"), state):
            return self.error(
                403, "Sign-in refused", "The sign-in did not start in this browser; start again."
            )
        if "error" in request.query or not request.query.get("code"):
            return self.error(403, "Sign-in refused", f"{provider.label} did not sign you in.")
        if not self.limiter.allow(request.ip, None):
            return self.error(429, "Too many attempts", "Wait a few minutes, then try again.")
        try:
            account = await provider.account(request.query["code"], self._redirect_uri(platform))
        except SignInFailed as exc:
            log.info("dashboard: %s sign-in failed: %s", platform, exc)
            return self.error(403, "Sign-in refused", str(exc))
        if not self.limiter.allow(request.ip, f"{account.platform}:{account.user_id}"):
            return self.error(429, "Too many attempts", "Wait a few minutes, then try again.")
        return self._signed_in(request, account)

    async def logout(self, request: Request, session: Session | None) -> Response:
        form = await request.form()
        if session is None or not same(session.csrf, form.get("csrf")):
            return self.error(403, "Refused", "The form had no valid token; reload the page.")
        response = redirect("/login")
        response.clear_cookie(SESSION_COOKIE, secure=self.secure(request))
        return response

    # -- pages -------------------------------------------------------------------------------

    async def home(self, session: Session) -> Response:
        async with self.db.transaction() as db:
            workspaces = await access.workspaces_of(db, session.platform, session.user_id)
        if len(workspaces) == 1:
            return redirect(f"/w/{workspaces[0].id}/")
        return self.page("home.html", viewer=session, workspaces=workspaces)

    async def _seat(self, db: Any, session: Session, workspace_id: int) -> access.Seat:
        found = await access.seat(db, session.platform, session.user_id, workspace_id)
        if found is None:
            raise Forbidden
        return found

    async def workspace_page(
        self, request: Request, session: Session, workspace_id: int, name: str
    ) -> Response:
        render = pages.PAGES.get(name or "overview")
        async with self.db.transaction() as db:
            seat = await self._seat(db, session, workspace_id)  # 403 before anything else
            if render is None:
                raise NotFound("There is no such page.")
            ctx = PageContext(db, seat, request.query, self.clock.now(), session)
            template, values = await render(ctx)
        return self.page(
            template,
            viewer=session,
            workspace=seat.workspace,
            seat=seat,
            nav=pages.NAV,
            current=name or "overview",
            csrf=session.csrf,
            **values,
        )

    async def chart(
        self, request: Request, session: Session, workspace_id: int, name: str
    ) -> Response:
        """A page's chart as SVG (an <img> on the page, its alt text there): drawn from the
        same values the page shows, so it shows nothing the page does not."""
        async with self.db.transaction() as db:
            seat = await self._seat(db, session, workspace_id)
            ctx = PageContext(db, seat, request.query, self.clock.now(), session)
            _, values = await pages.PAGES["standups" if name == "heatmap" else "pulse"](ctx)
        if name == "heatmap":
            chart = values.get("chart")
        else:
            wanted = request.query.get("team", "")
            chart = next((c for t, _, _, c in values["teams"] if str(t.id) == wanted), None)
        if chart is None:
            raise NotFound("There is no such chart.")
        svg = await asyncio.to_thread(render_svg, chart)
        return Response(body=svg.encode(), content_type="image/svg+xml")

    async def blocker_action(
        self, request: Request, session: Session, workspace_id: int, blocker_id: int, verb: str
    ) -> Response:
        form = await request.form()
        if not same(session.csrf, form.get("csrf")):
            return self.error(
                403, "Refused", "The form had no valid token; reload the page.", session
            )
        from bot.web.dashboard.pages import blockers

        problem: str | None = None
        status = 200
        try:
            async with self.db.transaction() as db:
                seat = await self._seat(db, session, workspace_id)
                await blockers.act(db, self.core, seat, blocker_id, verb, self.clock.now())
        except blockers.NoSuchBlocker:
            raise NotFound(f"There is no blocker #{blocker_id} in this workspace.") from None
        except PermissionDenied as exc:  # the transaction rolled back: nothing half-saved
            problem, status = exc.message, 403
        except UserError as exc:
            problem, status = exc.message, 409
        if problem is not None:
            async with self.db.transaction() as db:
                seat = await self._seat(db, session, workspace_id)
            return self.page(
                "done.html",
                status,
                viewer=session,
                workspace=seat.workspace,
                seat=seat,
                nav=pages.NAV,
                current="blockers",
                csrf=session.csrf,
                message=problem,
                back=f"/w/{workspace_id}/blockers",
            )
        if self.core is not None:  # the card and webhooks are queued; the ladder moved
            for wake in self.core.on_outbox:
                wake()
            for changed in self.core.on_schedules_changed:
                await changed()
        return redirect(f"/w/{workspace_id}/blockers?done={verb}d&id={blocker_id}")
