"""Requests from one node to another over Redis pub/sub: how a member's media event reaches
the node that carries the room's media, wherever the member's socket is.

Each node listens on its own channel for requests and for the replies to its own requests.
PUBLISH answers how many listeners got the message, so a request to a node that is gone
fails at once instead of waiting for a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

from .. import errors
from ..errors import SignalingError

log = logging.getLogger(__name__)

Handler = Callable[[str, list[Any]], Awaitable[Any]]


class NodeGone(Exception):
    """Nobody listens on that node's channel: the node stopped or died."""


class NodeRpc:
    def __init__(self, redis: Redis, prefix: str, node_id: str, handler: Handler,
                 timeout: float = 15.0) -> None:
        self._redis = redis
        self._prefix = prefix
        self._node_id = node_id
        self._handler = handler
        self._timeout = timeout
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _channel(self, node_id: str) -> str:
        return f"{self._prefix}:rpc:{node_id}"

    async def start(self) -> None:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._channel(self._node_id))
        self._listener = asyncio.create_task(self._listen(pubsub))

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        for task in list(self._tasks):
            task.cancel()
        for future in self._waiting.values():
            future.cancel()

    async def call(self, node_id: str, method: str, args: list[Any]) -> Any:
        """Run ``method(*args)`` on ``node_id``; its SignalingError is raised here."""
        request_id = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        try:
            message = json.dumps({"id": request_id, "from": self._node_id, "method": method,
                                  "args": args})
            if not await self._redis.publish(self._channel(node_id), message):
                raise NodeGone(node_id)
            try:
                reply = await asyncio.wait_for(future, self._timeout)
            except TimeoutError:
                # Slow is not gone: its heartbeat decides that, not one late answer.
                raise SignalingError(errors.MEDIA_ERROR, f"media node {node_id} did not "
                                     f"answer within {self._timeout:g} s") from None
        finally:
            self._waiting.pop(request_id, None)
        if "error" in reply:
            raise SignalingError(reply["error"]["code"], reply["error"]["message"])
        return reply["result"]

    async def _listen(self, pubsub: Any) -> None:
        async with pubsub:
            async for message in pubsub.listen():
                try:
                    body = json.loads(message["data"])
                except (TypeError, ValueError):
                    log.warning("node rpc: unreadable message on %s", message.get("channel"))
                    continue
                if "reply" in body:
                    future = self._waiting.get(body["id"])
                    if future is not None and not future.done():
                        future.set_result(body)
                else:
                    task = asyncio.create_task(self._serve(body))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _serve(self, body: dict[str, Any]) -> None:
        reply: dict[str, Any] = {"id": body["id"], "reply": True}
        try:
            reply["result"] = await self._handler(body["method"], body["args"])
        except SignalingError as exc:
            reply["error"] = exc.body()
        except Exception:
            log.exception("node rpc %s from %s failed", body.get("method"), body.get("from"))
            reply["error"] = SignalingError(errors.MEDIA_ERROR,
                                            "the media node failed on this request").body()
        await self._redis.publish(self._channel(body["from"]), json.dumps(reply))
