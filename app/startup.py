"""Starting `hoichan serve` so that a start that cannot succeed says why in one line and
leaves nothing behind.

Each StartupError's message is that line: what failed and the setting (or the command) that
changes it; `hoichan --debug serve` adds the traceback. (Settings and the data dir are checked
as they are read: app/config.py.) What can be checked before anything starts is checked first
(the database, the browser app build, the HTTP port, held from then on); the DICOM port is
bound by the SCP during the app's start-up, and a start failing there is undone before the
error is reported.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Callable

from aiohttp import web
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from app import web as browser_app
from app.config import Settings
from app.db import migrate
from app.db.engine import create_engine

log = logging.getLogger(__name__)

# A database server that drops our packets would otherwise keep the start waiting for the
# driver's own connect timeout, a minute or more, with nothing said.
DATABASE_ANSWER_S = 20.0
LISTEN_BACKLOG = 128  # aiohttp's default


class StartupError(Exception):
    """A reason the server cannot start that the operator can fix; the message is one line."""


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _bind_error(service: str, host: str, port: int, port_fix: str,
                exc: OSError) -> StartupError:
    if exc.errno == errno.EADDRINUSE:
        why = "the port is in use by another program (another Hoichan?)"
        fix = f"stop it, {port_fix}, or set HOICHAN_HOST to another address"
    elif exc.errno == errno.EADDRNOTAVAIL:
        why = f"{host} is not an address of this machine"
        fix = "set HOICHAN_HOST to one of its addresses"
    elif exc.errno == errno.EACCES:
        why = "this user may not listen on that port (below 1024 needs privileges)"
        fix = port_fix
    else:
        why = exc.strerror or str(exc)
        fix = f"{port_fix}, or set HOICHAN_HOST to another address"
    return StartupError(f"cannot listen for {service} on {_where(host, port)}: {why}; {fix}")


def http_bind_error(host: str, port: int, exc: OSError) -> StartupError:
    return _bind_error("HTTP", host, port, "set HOICHAN_PORT to another port", exc)


def dicom_bind_error(host: str, port: int, exc: OSError) -> StartupError:
    return _bind_error("DICOM", host, port,
                       "set HOICHAN_DICOM_PORT to another port (0: no DICOM listener)", exc)


def _shown(database_url: str) -> str:
    return make_url(database_url).render_as_string(hide_password=True)


async def _read_revision(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with asyncio.timeout(DATABASE_ANSWER_S):
            return await migrate.current_revision(engine)
    finally:
        await engine.dispose()


def code_revisions() -> set[str]:
    """Every schema revision this code has a migration for."""
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    return {revision.revision for revision in script.walk_revisions()}


def database_revision(settings: Settings) -> str | None:
    """The schema revision of the configured database (None: no schema yet), once it has
    answered and the revision is one this code knows."""
    url = settings.database_url
    try:
        current = asyncio.run(_read_revision(url))
    except TimeoutError as exc:
        raise StartupError(f"cannot reach the database at {_shown(url)}: no answer within "
                           f"{DATABASE_ANSWER_S:.0f} s; check HOICHAN_DATABASE_URL and that the "
                           "database server is running and reachable") from exc
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise StartupError(f"cannot reach the database at {_shown(url)}: {reason}; check "
                           "HOICHAN_DATABASE_URL and that the database server is running"
                           ) from exc
    if current is not None and current not in code_revisions():
        raise StartupError(
            f"the database at {_shown(url)} is at schema revision {current}, which this code "
            f"does not know (its newest is {migrate.head_revision()}): the code is older than "
            "the database; run the Hoichan version that migrated it, or set "
            "HOICHAN_DATABASE_URL to a database of this version")
    return current


def check_schema(settings: Settings) -> None:
    """The database answers and its schema is the one this code was written for."""
    current, head = database_revision(settings), migrate.head_revision()
    if current != head:
        raise StartupError(f"database schema is at {current or 'nothing'}, the code needs "
                           f"{head}: run `hoichan migrate` first")


def check_frontend() -> None:
    """The browser app is built: without it every page would answer 503."""
    index = browser_app.missing_build()
    if index is not None:
        raise StartupError(f"the browser app is not built ({index} is missing): run `make run`, "
                           "or `cd frontend && npm ci && npm run build`")


def listen_http(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` names, as aiohttp would open them. Opened
    before the app starts, so a taken port stops the start before SFU workers, the SCP or
    the signaling node exist, and nobody can take the port in between."""
    try:
        addresses = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen for HTTP on {host!r}: not an address, nor a name "
                           f"that resolves ({exc.strerror}); set HOICHAN_HOST to an address "
                           "of this machine") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(addresses):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # the IPv4 address gets its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(LISTEN_BACKLOG)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise http_bind_error(host, port, exc) from exc
    return sockets


async def _undo_failed_start(app: web.Application, seconds: float) -> None:
    """aiohttp runs no shutdown or cleanup hook when a start-up hook fails, yet the hooks
    before it have started things: the signaling node (in Redis, with its tasks), SFU worker
    processes, the audit writer. Every shutdown and cleanup hook runs, each on its own and for
    at most ``seconds``: one of a part that never started may fail or wait, and must not keep
    the others from stopping theirs."""
    for hook in [*app.on_shutdown, *app.on_cleanup]:
        try:
            async with asyncio.timeout(seconds):
                await hook(app)
        except Exception:  # TimeoutError too
            log.debug("stopping after a failed start: %r failed", hook, exc_info=True)


async def serve(app: web.Application, sockets: list[socket.socket], shutdown_timeout: float,
                announce: Callable[[list[str]], None]) -> None:
    """Serves ``app`` on ``sockets`` until SIGINT or SIGTERM; ``announce`` gets the URLs once
    it listens. A start-up hook's exception propagates after the start is undone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=shutdown_timeout)
    try:
        await runner.setup()
    except BaseException:
        await _undo_failed_start(app, shutdown_timeout)
        for sock in sockets:
            sock.close()
        raise
    try:
        for sock in sockets:
            await web.SockSite(runner, sock).start()
        announce([f"http://{_where(*sock.getsockname()[:2])}" for sock in sockets])
        await stop.wait()
    finally:
        await runner.cleanup()
