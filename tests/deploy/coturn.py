"""A real TURN server for the tests: Debian's coturn on free 127.0.0.1 ports, checking TURN
REST credentials (use-auth-secret) as in production, with loopback peers allowed so a relay
to a local UDP socket can be proven; and a TURN client (aioice's) that allocates and relays."""

from __future__ import annotations

import asyncio
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aioice import stun
from aioice.turn import TurnTransport, create_turn_endpoint

from tests.app_process import stop_process

REALM = "turn.test.hoichan"
SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
TIMEOUT = 5.0


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP: coturn listens on both."""
    while True:
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


@dataclass
class Coturn:
    process: subprocess.Popen[bytes]
    port: int
    secret: str
    log: Path
    #: TURN over TLS (turns:), when the configuration has it.
    tls_port: int | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def stop(self) -> None:
        stop_process(self.process)


def _answers_stun(port: int) -> bool:
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(bytes(request), ("127.0.0.1", port))
        try:
            return stun.parse_message(s.recv(2048)).transaction_id == request.transaction_id
        except (OSError, ValueError):
            return False


def _launch(folder: Path, args: list[str], port: int, secret: str,
            tls_port: int | None = None) -> Coturn:
    """Runs turnserver with ``args``, its output in ``coturn.log``, until it answers."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    # Its defaults are under /var: keep a test run's files in its own folder.
    args = [binary, *args, f"--pidfile={folder / 'turnserver.pid'}", f"--db={folder / 'turndb'}"]
    log = folder / "coturn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    server = Coturn(process, port, secret, log, tls_port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and process.poll() is None:
        if _answers_stun(port):
            return server
    server.stop()
    raise RuntimeError(f"coturn did not start: {log.read_text()[-2000:]}")


def start_coturn(folder: Path) -> Coturn:
    """coturn configured on the command line only: the credential scheme, nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    port, secret = free_udp_tcp_port(), secrets.token_urlsafe(32)
    return _launch(folder, [
        "-n",  # no configuration file
        f"--listening-port={port}", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={REALM}",
        "--no-tls", "--no-dtls", "--no-cli", "--allow-loopback-peers", "--no-multicast-peers",
        "--log-file=stdout", "--simple-log",
    ], port, secret)


def _set(config: str, key: str, value: str) -> str:
    """``key=value`` in place of the one ``key=`` line the shipped file has."""
    lines = re.findall(rf"^{re.escape(key)}=.*$", config, flags=re.MULTILINE)
    assert len(lines) == 1, f"expected one {key}= line in {SHIPPED}, got {lines}"
    return config.replace(lines[0], f"{key}={value}")


def start_shipped_coturn(folder: Path, cert: Path, key: Path, sfu: str) -> Coturn:
    """deploy/coturn/turnserver.conf but for what a test machine needs changed: loopback
    addresses, free ports, a self-signed certificate, a fresh secret, the SFU at ``sfu``
    (a loopback address), and loopback peers let in at all (coturn refuses them before it
    reads any peer list)."""
    folder.mkdir(parents=True, exist_ok=True)
    port, tls_port = free_udp_tcp_port(), free_udp_tcp_port()
    secret = secrets.token_urlsafe(32)
    config = SHIPPED.read_text()
    for name, value in [("listening-ip", "127.0.0.1"), ("relay-ip", "127.0.0.1"),
                        ("listening-port", str(port)), ("tls-listening-port", str(tls_port)),
                        ("cert", str(cert)), ("pkey", str(key)),
                        ("static-auth-secret", secret), ("log-file", "stdout")]:
        config = _set(config, name, value)
    allowed = re.findall(r"^allowed-peer-ip=.*\n", config, flags=re.MULTILINE)
    assert allowed, f"no allowed-peer-ip (the SFU) in {SHIPPED}"
    for line in allowed:
        config = config.replace(line, "")
    config += f"allowed-peer-ip={sfu}\nallow-loopback-peers\n"
    path = folder / "turnserver.conf"
    path.write_text(config)
    return _launch(folder, ["-c", str(path)], port, secret, tls_port)


def config_value(key: str) -> str:
    """A setting of the shipped file."""
    [value] = re.findall(rf"^{re.escape(key)}=(.*)$", SHIPPED.read_text(), flags=re.MULTILINE)
    return value


class Endpoint(asyncio.DatagramProtocol):
    """What arrives at one end of a relay: datagrams, errors, the end."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.closed = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.errors.put_nowait(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def allocate(url: str, username: str, password: str) -> tuple[TurnTransport, Endpoint]:
    """An allocation on the server of a ``turn:``/``turns:host:port[?transport=tcp]`` URI."""
    parts = urlsplit(url)
    host, port = parts.path.rsplit(":", 1)
    tls: ssl.SSLContext | None = None
    if parts.scheme == "turns":
        # The test certificate is self-signed: what is checked is coturn's TLS listener.
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    transport = "tcp" if tls or parts.query == "transport=tcp" else "udp"
    return await asyncio.wait_for(create_turn_endpoint(
        Endpoint, (host, int(port)), username, password, ssl=tls, transport=transport), TIMEOUT)


async def release(turn: TurnTransport, client: Endpoint) -> None:
    turn.close()
    await asyncio.wait_for(client.closed, TIMEOUT)


async def relay_round_trip(url: str, username: str, password: str,
                           peer_host: str = "127.0.0.1") -> tuple[str, int]:
    """Allocates and relays a datagram to a UDP peer and back; the relayed address."""
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(Endpoint,
                                                               local_addr=(peer_host, 0))
    peer_addr = peer_transport.get_extra_info("sockname")
    turn, client = await allocate(url, username, password)
    try:
        relayed: tuple[str, int] = turn.get_extra_info("sockname")
        turn.sendto(b"ping", peer_addr)
        assert await asyncio.wait_for(peer.received.get(), TIMEOUT) == (b"ping", relayed)
        peer_transport.sendto(b"pong", relayed)
        assert await asyncio.wait_for(client.received.get(), TIMEOUT) == (b"pong", peer_addr)
        return relayed
    finally:
        peer_transport.close()
        await release(turn, client)
