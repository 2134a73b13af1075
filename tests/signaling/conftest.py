"""Room fixtures: the app on a real 127.0.0.1 server, Socket.IO clients acting as doctors.

Signaling tests run on SQLite unless they ask for both databases with
``@pytest.mark.parametrize("database_url", BOTH_DATABASES, indirect=True)``; room
settings per test with ``@pytest.mark.room_settings(name=value, ...)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import socketio
from aiohttp.test_utils import TestClient

from app.auth.tokens import JoinClaims, issue_join
from app.config import Settings
from tests.conftest import World, fresh_database, make_settings
from tests.waiting import poll

BOTH_DATABASES = ["sqlite", "postgresql"]
NS = "/room"
WAIT = 5.0
ROOM_DEFAULTS: dict[str, Any] = dict(
    reconnect_grace_seconds=1.5,
    room_stats_interval_seconds=0.5,
    ice_host_addresses=("127.0.0.1",),
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "room_settings(**kw): Settings overrides for a room test")


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return fresh_database(request, tmp_path, request.param)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    marker = request.node.get_closest_marker("room_settings")
    overrides = {**ROOM_DEFAULTS, **(marker.kwargs if marker else {})}
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return make_settings(database_url, data_dir, **overrides)


class Peer:
    """One Socket.IO client in the room; records every event the server sends it."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._consumed: set[int] = set()
        self.connect_error: Any = None
        self.participant_id: str | None = None
        self.join_ack: dict[str, Any] | None = None

        @self.sio.on("*", namespace=NS)
        async def any_event(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if args else None))

        @self.sio.on("connect_error", namespace=NS)
        async def on_connect_error(data: Any) -> None:
            self.connect_error = data

    async def connect(self, url: str, auth: Any) -> None:
        await self.sio.connect(url, namespaces=[NS], auth=auth, transports=["websocket"],
                               wait_timeout=WAIT)

    async def call(self, event: str, data: Any = None, timeout: float = WAIT) -> Any:
        if data is None:
            return await self.sio.call(event, namespace=NS, timeout=timeout)
        return await self.sio.call(event, data, namespace=NS, timeout=timeout)

    async def join(self) -> dict[str, Any]:
        ack = await self.call("room:join")
        assert "error" not in ack, ack
        self.join_ack = ack
        self.participant_id = ack["participant_id"]
        return ack

    def seen(self, event: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [d for e, d in self.events if e == event and where(d)]

    async def wait(self, event: str, where: Callable[[Any], bool] = lambda _: True,
                   timeout: float = WAIT) -> Any:
        """The first not yet consumed ``event`` matching ``where``, waiting for it."""

        def take() -> tuple[Any] | None:  # a tuple: the event's data may itself be falsy
            for i, (e, d) in enumerate(self.events):
                if i not in self._consumed and e == event and where(d):
                    self._consumed.add(i)
                    return (d,)
            return None

        found = await poll(take, timeout, interval=0.02)
        if found is None:
            raise AssertionError(f"{self.label}: no {event!r} within {timeout}s; "
                                 f"got {[e for e, _ in self.events]}")
        return found[0]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


class Room:
    """Mints join tokens for the demo world's doctors and connects them."""

    def __init__(self, url: str, world: World,
                  client: TestClient[Any, Any] | None = None) -> None:
        self.client = client
        self.world = world
        self.url = url.rstrip("/")
        self.peers: list[Peer] = []
        self.consultation_id = world.consultation_id

    @property
    def media(self) -> Any:
        """This process's SFU rooms and their stats (signaling/cluster/media_node.py)."""
        from signaling.server import MEDIA

        assert self.client is not None, "this room's server runs in another process"
        return self.client.app[MEDIA]

    def token(self, key: str, role: str | None = None, *, consultation_id: int | None = None,
              minutes: float = 10, now: datetime | None = None) -> str:
        user = self.world.user(key)
        default_role = {"BM": "host", "NDI": "presenter"}.get(key, "participant")
        now = now or datetime.now(UTC)
        return issue_join(JoinClaims(
            user_id=user.id, consultation_id=consultation_id or self.consultation_id,
            room_role=role or default_role, name=user.name, hospital_code=user.hospital.code,
            hospital_name=user.hospital.name, tier=user.hospital.tier.value,
            expires_at=now + timedelta(minutes=minutes)), self.world.settings.jwt_secret, now)

    async def connect(self, key: str, role: str | None = None, *, auth: Any = None,
                      url: str | None = None) -> Peer:
        peer = Peer(key)
        self.peers.append(peer)
        await peer.connect(url or self.url,
                           auth if auth is not None else {"token": self.token(key, role)})
        return peer

    async def joined(self, key: str, role: str | None = None, *,
                     url: str | None = None) -> Peer:
        peer = await self.connect(key, role, url=url)
        await peer.join()
        return peer

    async def admitted(self, host: Peer, key: str, role: str | None = None, *,
                       url: str | None = None) -> Peer:
        """A non-host member through the lobby, admitted by ``host``."""
        peer = await self.joined(key, role, url=url)
        assert peer.join_ack is not None
        if peer.join_ack["status"] == "lobby":
            assert (await host.call("lobby:admit", {"participant_id": peer.participant_id})) \
                == {"ok": True}
            await peer.wait("room:admitted")
        return peer


@pytest.fixture
async def room(client: TestClient[Any, Any], world: World) -> AsyncIterator[Room]:
    r = Room(str(client.make_url("/")), world, client)
    yield r
    for peer in r.peers:
        await peer.close()
