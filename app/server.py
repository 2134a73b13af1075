"""The aiohttp application: middlewares, database, API routes, DICOMweb, PACS.

What the rooms add is given by the composition root (``hoichan.server``) as ``extensions``,
installed before the browser app's catch-all route."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Middleware

from app.api import routes
from app.appkeys import ENGINE, LOGIN_THROTTLE, RATE_LIMITER, READ_SESSIONS, SESSIONS, SETTINGS
from app.audit_export.syslog import Collector, setup_audit_syslog
from app.audit_windows import setup_audit_windows
from app.auth.rate_limit import MemoryWindows, RateLimiter, RedisWindows
from app.auth.throttle import LoginThrottle, MemoryCounts, RedisCounts
from app.compression import compression_middleware
from app.config import Settings
from app.db.engine import create_engine, read_session_factory, session_factory
from app.dicomweb.routes import setup_dicomweb
from app.errors import error_middleware
from app.metrics import setup_metrics
from app.pacs.imports import setup_imports
from app.pacs.setup import setup_pacs
from app.proxy import forwarded_middleware
from app.security_headers import setup_security_headers
from app.web import setup_web

MAX_BODY_BYTES = 1024 * 1024


Extension = Callable[[web.Application], object]


def create_app(settings: Settings, extensions: Sequence[Extension] = ()) -> web.Application:
    middlewares: list[Middleware] = [compression_middleware, error_middleware]
    if settings.trusted_proxies:
        middlewares.insert(0, forwarded_middleware(settings.trusted_proxies))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    engine = create_engine(settings.database_url)
    app[ENGINE] = engine
    app[SESSIONS] = session_factory(engine)
    app[READ_SESSIONS] = read_session_factory(engine)
    setup_audit_windows(app)
    if settings.audit_syslog is not None:
        setup_audit_syslog(app, Collector(*settings.audit_syslog, settings.audit_syslog_ca))
    counts = (RedisCounts(settings.redis_url, settings.redis_prefix) if settings.redis_url
              else MemoryCounts())
    app[LOGIN_THROTTLE] = LoginThrottle(counts)
    windows = (RedisWindows(settings.redis_url, settings.redis_prefix) if settings.redis_url
               else MemoryWindows())
    app[RATE_LIMITER] = RateLimiter(windows)
    setup_security_headers(app)
    routes.install(app)
    setup_pacs(app)
    setup_imports(app)
    setup_dicomweb(app)
    setup_metrics(app)
    for extend in extensions:
        extend(app)
    setup_web(app)  # last: the browser app answers only what no other route does

    async def dispose_engine(_: web.Application) -> None:
        await engine.dispose()
        await counts.close()
        await windows.close()

    app.on_cleanup.append(dispose_engine)
    return app
