"""The client's own address and scheme behind a reverse proxy (nginx in deploy/).

Audit events, `/metrics`' loopback rule and the signaling's client address all read
``request.remote``. Behind a proxy that is the proxy; the proxy's X-Forwarded-For and
X-Forwarded-Proto are believed only when the request comes straight from a proxy listed in
``HOICHAN_TRUSTED_PROXIES``, so a client that reaches a node directly cannot claim another
address by sending the header itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_remotes import XForwardedFiltered

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def forwarded_middleware(
    proxies: tuple[IPv4Network | IPv6Network, ...],
) -> Middleware:
    # XForwardedFiltered picks the right-most address not of a trusted proxy from the
    # header; it does not look at who sent the request, which is checked here first.
    forwarded = XForwardedFiltered(set(proxies))

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            peer = ip_address(request.remote or "")
        except ValueError:
            return await handler(request)
        if any(peer in network for network in proxies):
            return await forwarded.middleware(request, handler)
        return await handler(request)

    return middleware
