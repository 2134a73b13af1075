"""deploy/coturn/turnserver.conf under a real coturn: every line parses, the app's
credentials open allocations over UDP, TCP and TLS in the relay port range, and relays reach
the SFU's address but no other private one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aioice import stun

from app.auth.turn import TurnCredential, issue_turn_credential
from tests.deploy.coturn import (
    TIMEOUT,
    Coturn,
    Endpoint,
    allocate,
    config_value,
    relay_round_trip,
    release,
    start_shipped_coturn,
)
from tests.deploy.nginx import self_signed

SFU = "127.0.0.1"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    folder = tmp_path_factory.mktemp("coturn-shipped")
    self_signed(folder)
    server = start_shipped_coturn(folder, folder / "fullchain.pem", folder / "privkey.pem", SFU)
    try:
        yield server
    finally:
        server.stop()


def credential(server: Coturn) -> TurnCredential:
    return issue_turn_credential(server.secret, 7, timedelta(minutes=5),
                                 datetime.now(UTC))


def test_every_line_of_the_shipped_configuration_parses(shipped):
    log = shipped.log.read_text()
    assert "Bad configuration format" not in log, log
    assert "Relay ports initialization done" in log


@pytest.mark.parametrize("scheme,query", [("turn", ""), ("turn", "?transport=tcp"),
                                          ("turns", "?transport=tcp")])
async def test_the_apps_credentials_relay_to_the_sfu(shipped, scheme, query):
    port = shipped.tls_port if scheme == "turns" else shipped.port
    c = credential(shipped)
    _, relayed_port = await relay_round_trip(f"{scheme}:127.0.0.1:{port}{query}", c.username,
                                             c.credential, peer_host=SFU)
    assert int(config_value("min-port")) <= relayed_port <= int(config_value("max-port"))


async def test_no_relay_to_other_private_addresses(shipped):
    loop = asyncio.get_running_loop()
    # Another loopback address stands for the hospital network behind the TURN server.
    peer_transport, peer = await loop.create_datagram_endpoint(Endpoint,
                                                               local_addr=("127.0.0.2", 0))
    c = credential(shipped)
    turn, client = await allocate(f"turn:127.0.0.1:{shipped.port}", c.username, c.credential)
    try:
        turn.sendto(b"knock", peer_transport.get_extra_info("sockname"))
        error = await asyncio.wait_for(client.errors.get(), TIMEOUT)
        assert isinstance(error, stun.TransactionFailed)
        assert error.response.error_code == 403
        assert peer.received.empty()
    finally:
        peer_transport.close()
        await release(turn, client)
