"""Where a webhook may go: URL checks and the server-side request forgery guard.

A webhook URL is typed by a workspace admin, but syncup sends from inside the operator's
network, so a URL could point it at the cloud metadata service (169.254.169.254), a database on
the private network or the bot's own HTTP port. Unless ``[webhooks] allow_private_targets`` is
set, a URL must be https and its host must resolve only to global addresses. The check runs when
the endpoint is added (to say so at once) and again before every send, because DNS answers
change (rebinding): the request then goes to the very address that was checked (the connection
is pinned to it; TLS still verifies the certificate against the host name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

MAX_URL_CHARS = 2000
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the host resolves to (tests inject their own DNS).
Resolver = Callable[[str, int], Awaitable[list[str]]]
ALLOW_HINT = "an operator can allow it with [webhooks] allow_private_targets = true"


class TargetRefused(Exception):
    """The URL may not be used; the message says why and what to do (shown to the admin)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ResolutionFailed(Exception):
    """DNS did not answer (perhaps for now): at add time a refusal, at send time a retry."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_url(raw: str, *, allow_private: bool) -> httpx.URL:
    """Check a URL's form: http(s) with a host, no credentials, no fragment, not too long."""
    raw = raw.strip().strip("<>")  # Slack wraps links in <...>
    if "|" in raw:  # Slack's <url|label>
        raw = raw.split("|", 1)[0]
    if not raw:
        raise TargetRefused("The webhook URL is missing.")
    if len(raw) > MAX_URL_CHARS:
        raise TargetRefused(f"That URL is longer than {MAX_URL_CHARS} characters.")
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise TargetRefused(f'"{raw}" is not a valid URL ({exc}).') from None
    schemes = ("https", "http") if allow_private else ("https",)
    if url.scheme not in schemes:
        if url.scheme == "http":
            raise TargetRefused(
                f'Webhook URLs must use https:// ("{raw}" is http); {ALLOW_HINT} inside a '
                "private network."
            )
        raise TargetRefused(
            f'"{raw}" is not a web address; use https://host/path '
            "(e.g. https://hooks.example.com/syncup)."
        )
    if not url.host:
        raise TargetRefused(f'"{raw}" has no host; use https://host/path.')
    if url.userinfo:
        raise TargetRefused(
            "Put no user name or password in the webhook URL; receivers check the signature."
        )
    if url.fragment:
        raise TargetRefused(f'"{raw}" has a #fragment, which is never sent; leave it out.')
    return url


def describe_address(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None when it is."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return describe_address(ip.ipv4_mapped)
    if ip.is_unspecified:
        return "not a public address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private:
        return "a private address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified or ip.is_reserved or not ip.is_global:
        return "not a public address"
    return None


def port_of(url: httpx.URL) -> int:
    return url.port or (443 if url.scheme == "https" else 80)


@dataclass(frozen=True)
class Checked:
    """A URL and the address the request must go to."""

    url: httpx.URL
    address: IPAddress


async def check_target(
    url: httpx.URL, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Checked:
    """Resolve the host and refuse it when any of its addresses is not public (unless
    allowed); returns the address to connect to."""
    host = url.host
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            found = await resolver(host, port_of(url))
        except (OSError, UnicodeError) as exc:
            raise ResolutionFailed(f'Cannot resolve "{host}" ({exc}).') from None
        addresses = []
        for raw in found:
            try:
                addresses.append(ipaddress.ip_address(raw.split("%", 1)[0]))
            except ValueError:
                continue
        if not addresses:
            raise ResolutionFailed(f'"{host}" resolves to no address.')
    if not allow_private:
        for ip in addresses:
            why = describe_address(ip)
            if why is not None:
                named = f"{host} resolves to {ip}," if literal is None else f"{ip} is"
                raise TargetRefused(
                    f"{named} {why}: syncup does not send webhooks into its own network "
                    f"({ALLOW_HINT})."
                )
    return Checked(url, addresses[0])


def pinned_request(checked: Checked) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """The URL to request (the checked address instead of the name), the Host header, and
    httpx's ``sni_hostname`` extension so that TLS still checks the name's certificate."""
    url = checked.url
    try:
        ipaddress.ip_address(url.host)
        return url, {}, {}  # already an address
    except ValueError:
        pass
    host_header = url.host if url.port is None else f"{url.host}:{url.port}"
    extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
    return url.copy_with(host=str(checked.address)), {"Host": host_header}, extensions
