"""Who may call the server from a browser: the Host names it answers and the origins it serves.

A server on loopback is still reachable by every web page its user opens. Two attacks follow,
and one rule each stops them:

- **DNS rebinding**: a page on `evil.example` makes that name resolve to 127.0.0.1 and reads
  the replies as its own. Its requests carry `Host: evil.example`, so a server bound to
  loopback answers only loopback names (`localhost`, `127.0.0.1`, `[::1]`) and the names
  given with `--allow-host`. A server bound beyond loopback was opened to a network on
  purpose: it answers any name, and its API key is what protects it.
- **Cross-site requests** (CSRF): a page may send requests to any address without reading the
  reply. A browser marks them with `Origin`, so a request with an Origin is refused unless
  that origin is allowed (`--allow-origin`, or `--cors` for any); allowed ones get CORS
  headers and their preflight (OPTIONS) is answered. JSON bodies must say
  `Content-Type: application/json` (app.py checks it), which no form can send without a
  preflight.

Clients that are not browsers (curl, the openai package, `sd.connect`) send no Origin.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from . import shapes

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

ANY = "*"
LOOPBACK_NAMES = frozenset({"localhost"})
ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
PREFLIGHT_SECONDS = "600"


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine."""
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name in a Host header, without its port: `[::1]:1234` -> `::1`."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    if header.count(":") > 1:  # an IPv6 address without brackets has no port
        return header
    name, colon, port = header.rpartition(":")
    return name if colon and port.isdigit() else header


@dataclass(frozen=True)
class Access:
    """The Host names and browser origins a server answers.

    `check_host`: answer only loopback names and `hosts` (what a loopback server does; one
    bound beyond loopback answers any). `origins`: allowed origins (`*`: any), as a browser
    writes them (`http://localhost:8888`).
    """

    check_host: bool = True
    hosts: frozenset[str] = field(default_factory=frozenset)
    origins: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def for_bind(
        cls, host: str, hosts: Collection[str] = (), origins: Collection[str] = ()
    ) -> Access:
        """The rules for a server bound to `host`, with the names and origins its user added."""
        return cls(
            check_host=is_loopback(host) and ANY not in hosts,
            hosts=frozenset(h.lower() for h in hosts),
            origins=frozenset(o.rstrip("/").lower() for o in origins),
        )

    def host_refusal(self, header: str) -> str | None:
        """Why a request with this Host header is refused, or None."""
        name = host_name(header)
        if not self.check_host or is_loopback(name) or name in self.hosts:
            return None
        return (
            f"this server answers loopback names only, not {name!r} (a page using DNS "
            "rebinding sends such names); to reach it by that name start it with "
            f"--allow-host {name}"
        )

    def origin_allowed(self, origin: str) -> bool:
        return ANY in self.origins or origin.rstrip("/").lower() in self.origins

    def origin_refusal(self, origin: str) -> str:
        return (
            f"requests from web pages at {origin} are refused (a page could act for whoever "
            f"opens it); to let that page call this server start it with --allow-origin "
            f"{origin} (or --cors for any page)"
        )


class AccessControl:
    """ASGI middleware applying `Access` to every request, routes or none: refusals are
    OpenAI's error object (403), allowed origins get CORS headers and preflight answers."""

    def __init__(self, app: App, access: Access):
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.access.host_refusal(headers.get("host", ""))
        origin = headers.get("origin")
        if refusal is None and origin is not None and not self.access.origin_allowed(origin):
            refusal = self.access.origin_refusal(origin)
        if refusal is not None:
            await _send_json(send, 403, shapes.error(refusal, 403))
            return
        cors = _cors_headers(origin) if origin is not None else []
        if scope["method"] == "OPTIONS" and origin is not None:
            await send({"type": "http.response.start", "status": 204, "headers": cors})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and cors:
                message = {**message, "headers": [*message.get("headers", []), *cors]}
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    pairs = {
        "access-control-allow-origin": origin,
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-allow-headers": ALLOWED_HEADERS,
        "access-control-max-age": PREFLIGHT_SECONDS,
        "vary": "Origin",
    }
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs.items()]


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
