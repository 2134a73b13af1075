"""deploy/nginx/hoichan.conf in front of an app node: HTTPS with HTTP/2 and HSTS, the API,
the Socket.IO room channel over WebSocket and long-polling (the browser's Origin accepted),
large bodies only for DICOMweb, and /metrics never passed from outside."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio

from tests.deploy.nginx import Nginx, start_nginx

TIMEOUT = 10


@pytest.fixture
async def nginx(client: Any, tmp_path: Path) -> AsyncIterator[Nginx]:
    server = start_nginx(tmp_path / "nginx", client.server.port)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def https(nginx: Nginx) -> AsyncIterator[aiohttp.ClientSession]:
    # The certificate is self-signed: what is under test is nginx's handling, not the PKI.
    connector = aiohttp.TCPConnector(ssl=False)
    async with aiohttp.ClientSession(nginx.url, connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        yield session


def negotiated_protocol(port: int) -> str | None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.selected_alpn_protocol()


async def test_https_with_http2_and_hsts_and_plain_http_redirected(nginx, https):
    assert await asyncio.to_thread(negotiated_protocol, nginx.https_port) == "h2"
    async with https.get("/healthz") as r:
        assert r.status == 200
        assert r.headers["Strict-Transport-Security"].startswith("max-age=63072000")
    async with aiohttp.ClientSession() as plain, plain.get(
            f"http://127.0.0.1:{nginx.http_port}/api/me", allow_redirects=False) as r:
        assert r.status == 301
        assert r.headers["Location"] == "https://127.0.0.1/api/me"


async def test_metrics_are_not_passed_from_outside(client, https):
    # The node answers a loopback caller, and nginx on the same machine is one.
    assert (await client.get("/metrics")).status == 200
    async with https.get("/metrics") as r:
        assert r.status == 404


async def test_only_dicomweb_takes_large_bodies(world, https):
    body = b"\0" * (3 * 1024 * 1024)
    async with https.post("/api/auth/login", data=body) as r:
        assert r.status == 413  # nginx's limit, before the app
    # Through to the app, which answers for itself (not multipart/related).
    async with https.post("/dicomweb/studies", data=body, headers={
            **world.auth("coordinator"), "Content-Type": "application/dicom"}) as r:
        assert r.status == 415


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_the_room_channel_through_nginx(world, nginx, https, transport):
    async with https.post(f"/api/consultations/{world.consultation_id}/join-token",
                          headers=world.auth("BM")) as r:
        assert r.status == 200, await r.text()
        token = (await r.json())["token"]
    sio = socketio.AsyncClient(reconnection=False, ssl_verify=False)
    try:
        # A browser sends its page's origin; python-socketio accepts it only if nginx tells
        # the node the request came over https (X-Forwarded-Proto) for this host and port.
        await sio.connect(nginx.url, namespaces=["/room"], transports=[transport],
                          auth={"token": token}, headers={"Origin": nginx.url},
                          wait_timeout=TIMEOUT)
        assert sio.transport() == transport
        ack = await sio.call("room:join", namespace="/room", timeout=TIMEOUT)
        assert ack["status"] == "admitted", ack
    finally:
        await sio.disconnect()
