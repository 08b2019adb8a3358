"""The dashboard's request and response: parsed query, cookies and form; HTML out with the
security headers every answer carries (no JavaScript anywhere, so the policy forbids scripts
outright; styles come only from syncup's own ``/static``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from bot.web.asgi import Receive, Scope, Send, TooLarge, client, header, read_body

CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
FORM_LIMIT = 16 * 1024  # the dashboard's forms are a token and an id or two


class BadRequest(Exception):
    pass


@dataclass
class Request:
    scope: Scope
    receive: Receive
    method: str
    path: str
    query: dict[str, str]
    cookies: dict[str, str]
    ip: str
    secure: bool

    @classmethod
    def of(cls, scope: Scope, receive: Receive) -> Request:
        raw_query = bytes(scope.get("query_string") or b"").decode("latin-1")
        query = {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        cookies: dict[str, str] = {}
        raw_cookie = header(scope, b"cookie")
        if raw_cookie:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(raw_cookie)
            except CookieError:
                pass
            cookies = {k: m.value for k, m in jar.items()}
        return cls(
            scope=scope,
            receive=receive,
            method=scope.get("method", "GET"),
            path=scope["path"],
            query=query,
            cookies=cookies,
            ip=client(scope),
            secure=scope.get("scheme") == "https",
        )

    async def form(self) -> dict[str, str]:
        try:
            body = await read_body(self.scope, self.receive, FORM_LIMIT)
        except TooLarge:
            raise BadRequest("the form is too large") from None
        if body is None:
            raise BadRequest("the client went away")
        if not body:
            return {}  # no fields: the CSRF check refuses it (403)
        kind = header(self.scope, b"content-type") or ""
        if not kind.startswith("application/x-www-form-urlencoded"):
            raise BadRequest("the form must be sent as application/x-www-form-urlencoded")
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    def set_cookie(
        self, name: str, value: str, *, max_age: int, secure: bool, path: str = "/"
    ) -> None:
        parts = [f"{name}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly"]
        parts.append("SameSite=Lax")
        if secure:
            parts.append("Secure")
        self.headers.append((b"set-cookie", "; ".join(parts).encode("latin-1")))

    def clear_cookie(self, name: str, *, secure: bool, path: str = "/") -> None:
        self.set_cookie(name, "", max_age=0, secure=secure, path=path)

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", b"%d" % len(self.body)),
            *SECURITY_HEADERS,
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def redirect(location: str, status: int = 303) -> Response:
    return Response(status=status, headers=[(b"location", location.encode("latin-1"))])
