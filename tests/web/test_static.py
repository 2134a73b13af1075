"""app/web.py: the built browser app served beside the API, which it must leave as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from app.errors import error_middleware
from app.web import is_client_route, setup_web

INDEX = b"<!doctype html><title>Hoichan</title><script type=module src=/assets/index-abc123.js>"


def make_dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_bytes(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log('hi')")
    (dist / "assets" / "codec-x1.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "secret.txt").write_text("not to be served")
    return dist


async def login(_: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def make_app(dist: Path) -> web.Application:
    """Like create_app: the error middleware, API routes, then the browser app last."""
    app = web.Application(middlewares=[error_middleware])
    app.router.add_post("/api/auth/login", login)
    app.router.add_get("/healthz", healthz)
    setup_web(app, dist)
    return app


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app(make_dist(tmp_path)))) as c:
        yield c


@pytest.mark.parametrize("path", ["/", "/login", "/consultations/42/room", "/index.html",
                                  "/some/future/page"])
async def test_pages_answer_index_html_uncached(client: TestClient[Any, Any], path: str) -> None:
    r = await client.get(path)
    assert r.status == 200
    assert await r.read() == INDEX
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.headers["Cache-Control"] == "no-cache"
    assert "script-src 'self' 'wasm-unsafe-eval'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"


async def test_hashed_assets_are_immutable_with_their_types(client: TestClient[Any, Any]) -> None:
    r = await client.get("/assets/index-abc123.js")
    assert r.status == 200
    assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert r.headers["Content-Type"].startswith("text/javascript")
    r = await client.get("/assets/codec-x1.wasm")
    assert r.status == 200
    assert r.headers["Content-Type"] == "application/wasm"  # needed by instantiateStreaming
    assert await r.read() == b"\0asm\1\0\0\0"


@pytest.mark.parametrize("path", ["/assets/missing-1.js", "/assets/..%2Fsecret.txt",
                                  "/assets/%2e%2e/secret.txt", "/assets/.hidden",
                                  "/favicon.ico", "/secret.txt", "/../secret.txt"])
async def test_no_other_file_is_served(client: TestClient[Any, Any], path: str) -> None:
    r = await client.get(path)
    assert r.status == 404
    assert b"not to be served" not in await r.read()


async def test_the_api_answers_as_before(client: TestClient[Any, Any]) -> None:
    r = await client.get("/api/nothing")
    assert r.status == 404
    assert (await r.json())["error"]["code"] == "not_found"
    r = await client.get("/api/auth/login")  # a POST route: still 405, not a page
    assert r.status == 405
    r = await client.post("/api/auth/login")
    assert r.status == 200
    r = await client.get("/dicomweb/studies/1.2.3")
    assert r.status == 404 and r.headers["Content-Type"].startswith("application/json")
    r = await client.get("/socket.io/nothing")
    assert r.status == 404
    r = await client.post("/consultations/42/room")  # pages are GET only
    assert r.status in (404, 405)
    assert await r.read() != INDEX


async def test_without_a_build_pages_say_so_and_the_api_works(tmp_path: Path) -> None:
    async with TestClient(TestServer(make_app(tmp_path / "no-dist"))) as c:
        r = await c.get("/consultations/1/room")
        assert r.status == 503
        assert "make run" in await r.text()
        assert (await c.get("/healthz")).status == 200
        assert (await c.post("/api/auth/login")).status == 200


def test_client_routes() -> None:
    assert is_client_route("/")
    assert is_client_route("/consultations/3/room")
    assert not is_client_route("/api")
    assert not is_client_route("/api/x")
    assert not is_client_route("/dicomweb/studies")
    assert not is_client_route("/socket.io/")
    assert not is_client_route("/healthz")
    assert not is_client_route("/robots.txt")
    assert is_client_route("/apiary")  # only whole segments are server prefixes
