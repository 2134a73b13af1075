"""Settings read from ``HOICHAN_*`` environment variables.

Every setting has a default that serves the embedded single-machine mode (`make run`);
production overrides them through the environment (see README.md, "Configuration").
"""

from __future__ import annotations

import os
import pwd
import secrets
import socket
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

ENV_PREFIX = "HOICHAN_"
JWT_SECRET_FILE = "jwt-secret"


class ConfigError(ValueError):
    """A setting has a value that cannot be used."""


def _env(name: str, default: str) -> str:
    return os.environ.get(ENV_PREFIX + name, default)


# Upper bounds: a port must exist, and a lifetime so long that expiry dates overflow would
# turn every login or join into a server error instead of stopping the start here.
MAX_PORT = 65535
MAX_MINUTES = 24 * 60
MAX_DAYS = 365


def _env_int(name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{ENV_PREFIX}{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{ENV_PREFIX}{name} must be at most {maximum}, got {value}")
    return value


def _audit_syslog() -> tuple[str, int] | None:
    raw = _env("AUDIT_SYSLOG", "").strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) <= MAX_PORT:
        raise ConfigError(f"{ENV_PREFIX}AUDIT_SYSLOG must be host:port of a syslog collector "
                          f"taking TLS (RFC 5425, usually port 6514), got {raw!r}")
    return host, int(port)


def _readable_file(name: str) -> str:
    path = _env(name, "").strip()
    if path and not os.access(path, os.R_OK):
        raise ConfigError(f"{ENV_PREFIX}{name}: cannot read {path}")
    return path


def _env_bool(name: str, default: bool) -> bool:
    raw = _env(name, "1" if default else "0").strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{ENV_PREFIX}{name} must be 1/0, true/false, yes/no or on/off, "
                      f"got {raw!r}")


def _env_float(name: str, default: float, minimum: float) -> float:
    raw = _env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{ENV_PREFIX}{name} must be a number, got {raw!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"{ENV_PREFIX}{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    redis_url: str
    host: str
    port: int
    jwt_secret: str
    access_token_minutes: int
    refresh_token_days: int
    join_token_minutes: int
    lobby_lead_minutes: int
    dicom_ae_title: str
    dicom_port: int
    ice_host_addresses: tuple[str, ...] = field(default_factory=tuple)
    dicom_allowed_callers: tuple[str, ...] = field(default_factory=tuple)
    #: Also let in the AE titles of the configured DIMSE PACS nodes, and restrict callers
    #: to those even when dicom_allowed_callers is empty.
    dicom_callers_from_nodes: bool = False
    #: Bearer token for /metrics; empty: /metrics answers loopback callers only.
    metrics_token: str = ""
    # DIMSE over TLS: certificate and key (PEM) of our SCP; with a CA, callers must present
    # a certificate it signed.
    dicom_tls_cert: Path | None = None
    dicom_tls_key: Path | None = None
    dicom_tls_ca: Path | None = None
    #: The hospital's certificate and key (PKCS#12) that signs the minutes' PDF; without it
    #: the PDF of signed minutes carries the sign-off but no digital signature.
    signing_p12: Path | None = None
    signing_p12_password: str = ""
    # Live rooms (signaling/): capacity, reconnection, per-client event budget, stats.
    room_max_publishers: int = 16
    room_max_observers: int = 50
    reconnect_grace_seconds: float = 30.0
    signaling_event_rate: float = 20.0
    signaling_event_burst: int = 60
    signaling_max_event_bytes: int = 256 * 1024
    room_stats_interval_seconds: float = 2.0
    # TURN (coturn with use-auth-secret): the URIs handed to browsers with each join token,
    # the secret shared with coturn, and how long a credential opens new allocations.
    turn_urls: tuple[str, ...] = field(default_factory=tuple)
    turn_secret: str = ""
    turn_ttl_seconds: int = 3600
    # Multi-node (with redis_url): this process's name among the nodes, and the prefix of
    # every Redis key and channel (several deployments may share one Redis).
    node_id: str = "node"
    #: A syslog collector (host, port) the audit trail is sent to over TLS, and the CA
    #: file its certificate is checked against (empty: the system's CAs).
    audit_syslog: tuple[str, int] | None = None
    audit_syslog_ca: str = ""
    redis_prefix: str = "hoichan"
    #: How long a node that stops sending heartbeats is still taken for alive.
    node_ttl_seconds: float = 6.0
    #: SFU worker processes this node starts (multi-node only); 0: media runs in this process.
    media_workers: int = 0
    #: Subscribe connections a room keeps in the worker receiving its publishers before
    #: later ones spread over the machine's other workers (relayed frames cost a little).
    room_home_subscribers: int = 8
    #: Reverse proxies whose X-Forwarded-For / -Proto name the client (nginx in front).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = field(default_factory=tuple)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry, as in some containers
        return f"uid {os.geteuid()}"


def load_jwt_secret(data_dir: Path) -> str:
    """The signing secret from the environment, else the one kept in the data dir.

    A missing secret is generated once and written with mode 0600, so tokens survive
    restarts without any secret living in the code or the repository.
    """
    configured = os.environ.get(ENV_PREFIX + "JWT_SECRET")
    if configured:
        if len(configured) < 32:
            raise ConfigError(f"{ENV_PREFIX}JWT_SECRET must be at least 32 characters")
        return configured
    path = data_dir / JWT_SECRET_FILE
    if path.exists():
        try:
            kept = path.read_text().strip()
        except OSError as exc:  # written by another user, say root running `make run`
            raise ConfigError(f"cannot read {path}: {exc.strerror}; let the user {_user()} "
                              f"read it or set {ENV_PREFIX}JWT_SECRET") from None
        # A file cut short (a crash between creating and writing it) must not make the
        # server sign tokens with an empty or guessable key.
        if len(kept) < 32:
            raise ConfigError(f"{path} holds no usable secret (under 32 characters); "
                              f"remove it to generate a new one or set {ENV_PREFIX}JWT_SECRET")
        return kept
    secret = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret


def _data_dir(raw: str) -> Path:
    """The data dir, made if missing and checked now by listing it and writing a file in it:
    the SQLite database, the DICOM store and the secrets live there, and the first C-STORE or
    login is no time to find out that they cannot."""
    path = Path(raw).resolve()
    steps: list[tuple[str, Callable[[], object]]] = [
        ("create", lambda: path.mkdir(mode=0o700, parents=True, exist_ok=True)),
        ("read", lambda: os.listdir(path)),
        ("write to", lambda: tempfile.TemporaryFile(dir=path).close()),
    ]
    for action, step in steps:
        try:
            step()
        except FileExistsError:  # what mkdir says of a file in the way
            raise ConfigError(f"{ENV_PREFIX}DATA_DIR: {path} is a file, not a directory; set "
                              f"{ENV_PREFIX}DATA_DIR to a directory") from None
        except OSError as exc:
            raise ConfigError(f"{ENV_PREFIX}DATA_DIR: cannot {action} {path}: "
                              f"{exc.strerror or exc}; let the user {_user()} {action} it or "
                              f"set {ENV_PREFIX}DATA_DIR to another directory") from None
    return path


def _dicom_tls() -> tuple[Path | None, Path | None, Path | None]:
    """The TLS certificate, key and CA paths, checked now by loading them, so a wrong file
    stops the start with its name instead of failing the first association."""
    cert, key, ca = (_env(name, "").strip() or None for name in
                     ("DICOM_TLS_CERT", "DICOM_TLS_KEY", "DICOM_TLS_CA"))
    if cert is None and key is None:
        if ca is not None:
            raise ConfigError(f"{ENV_PREFIX}DICOM_TLS_CA needs {ENV_PREFIX}DICOM_TLS_CERT and "
                              f"{ENV_PREFIX}DICOM_TLS_KEY")
        return None, None, None
    if cert is None or key is None:
        raise ConfigError(f"set both {ENV_PREFIX}DICOM_TLS_CERT and {ENV_PREFIX}DICOM_TLS_KEY "
                          "(DIMSE over TLS) or neither")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"{ENV_PREFIX}DICOM_TLS_CERT/{ENV_PREFIX}DICOM_TLS_KEY ({cert}, "
                          f"{key}) cannot be used: {exc}") from None
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{ENV_PREFIX}DICOM_TLS_CA ({ca}) cannot be used: {exc}"
                              ) from None
    return Path(cert).resolve(), Path(key).resolve(), Path(ca).resolve() if ca else None


def _turn_servers() -> tuple[tuple[str, ...], str]:
    """The TURN URIs and their shared secret, checked now: URIs without a secret would hand
    browsers credentials coturn refuses, and media would fail only behind NATs."""
    urls = tuple(u.strip() for u in _env("TURN_URLS", "").split(",") if u.strip())
    bad = [u for u in urls if not u.startswith(("turn:", "turns:"))]
    if bad:
        raise ConfigError(f"{ENV_PREFIX}TURN_URLS: every URI starts with turn: or turns:, "
                          f"got {', '.join(bad)}")
    secret = _env("TURN_SECRET", "")
    if urls and len(secret) < 32:
        raise ConfigError(f"{ENV_PREFIX}TURN_URLS needs {ENV_PREFIX}TURN_SECRET, the "
                          "static-auth-secret of coturn, of at least 32 characters")
    return urls, secret


def _media_workers(redis_url: str) -> int:
    # One per core by default: a node's SFU is one Python process, about one core.
    default = (os.cpu_count() or 1) if redis_url else 0
    workers = _env_int("MEDIA_WORKERS", default, minimum=0, maximum=256)
    if workers and not redis_url:
        raise ConfigError(f"{ENV_PREFIX}MEDIA_WORKERS needs {ENV_PREFIX}REDIS_URL: workers "
                          "reach the rooms through Redis")
    return workers


def _trusted_proxies() -> tuple[IPv4Network | IPv6Network, ...]:
    networks = []
    for item in _env("TRUSTED_PROXIES", "").split(","):
        if item.strip():
            try:
                networks.append(ip_network(item.strip(), strict=False))
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}TRUSTED_PROXIES: {item.strip()!r} is not an "
                                  "IP address or network") from None
    return tuple(networks)


def _signing() -> tuple[Path | None, str]:
    """The minutes' signing certificate, opened once here so that a wrong path, password or
    certificate stops the start with one line rather than the first signed PDF."""
    from app.minutes.signing import SigningError, load_signer

    path = _env("SIGNING_P12", "")
    password = _env("SIGNING_P12_PASSWORD", "")
    if not path:
        return None, ""
    try:
        load_signer(path, password)
    except SigningError as exc:
        raise ConfigError(str(exc)) from None
    return Path(path), password


def load_settings() -> Settings:
    data_dir = _data_dir(_env("DATA_DIR", "./var"))
    database_url = _env("DATABASE_URL", f"sqlite+aiosqlite:///{data_dir / 'hoichan.db'}")
    if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise ConfigError(
            f"{ENV_PREFIX}DATABASE_URL must start with sqlite+aiosqlite:// or "
            f"postgresql+asyncpg://, got {database_url.split(':', 1)[0]}"
        )
    ae_title = _env("DICOM_AE_TITLE", "HOICHAN")
    if not (1 <= len(ae_title) <= 16) or not ae_title.isascii() or "\\" in ae_title:
        raise ConfigError(f"{ENV_PREFIX}DICOM_AE_TITLE must be 1-16 ASCII characters")
    ice = tuple(a.strip() for a in _env("ICE_HOST_ADDRESSES", "").split(",") if a.strip())
    callers = tuple(a.strip() for a in _env("DICOM_ALLOWED_CALLERS", "").split(",")
                    if a.strip())
    if any(len(a) > 16 for a in callers):
        raise ConfigError(f"{ENV_PREFIX}DICOM_ALLOWED_CALLERS: AE titles are at most 16 "
                          "characters")
    tls_cert, tls_key, tls_ca = _dicom_tls()
    turn_urls, turn_secret = _turn_servers()
    signing_p12, signing_password = _signing()
    host = _env("HOST", "127.0.0.1")
    port = _env_int("PORT", 8080, minimum=0, maximum=MAX_PORT)
    dicom_port = _env_int("DICOM_PORT", 11112, minimum=0, maximum=MAX_PORT)
    if dicom_port and dicom_port == port:
        raise ConfigError(f"{ENV_PREFIX}PORT and {ENV_PREFIX}DICOM_PORT are both {port}: HTTP "
                          "and DICOM need a port each")
    redis_url = _env("REDIS_URL", "")
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        redis_url=redis_url,
        host=host,
        port=port,
        node_id=_env("NODE_ID", f"{socket.gethostname()}:{port}"),
        redis_prefix=_env("REDIS_PREFIX", "hoichan"),
        node_ttl_seconds=_env_float("NODE_TTL_SECONDS", 6.0, minimum=1.0),
        trusted_proxies=_trusted_proxies(),
        media_workers=_media_workers(redis_url),
        room_home_subscribers=_env_int("ROOM_HOME_SUBSCRIBERS", 8, minimum=0),
        jwt_secret=load_jwt_secret(data_dir),
        access_token_minutes=_env_int("ACCESS_TOKEN_MINUTES", 15, minimum=1,
                                      maximum=MAX_MINUTES),
        refresh_token_days=_env_int("REFRESH_TOKEN_DAYS", 7, minimum=1, maximum=MAX_DAYS),
        join_token_minutes=_env_int("JOIN_TOKEN_MINUTES", 10, minimum=1, maximum=MAX_MINUTES),
        lobby_lead_minutes=_env_int("LOBBY_LEAD_MINUTES", 15, minimum=0, maximum=MAX_MINUTES),
        dicom_ae_title=ae_title,
        dicom_port=dicom_port,
        ice_host_addresses=ice,
        dicom_allowed_callers=callers,
        dicom_callers_from_nodes=_env_bool("DICOM_CALLERS_FROM_NODES", False),
        metrics_token=_env("METRICS_TOKEN", ""),
        audit_syslog=_audit_syslog(),
        audit_syslog_ca=_readable_file("AUDIT_SYSLOG_CA"),
        dicom_tls_cert=tls_cert,
        dicom_tls_key=tls_key,
        dicom_tls_ca=tls_ca,
        signing_p12=signing_p12,
        signing_p12_password=signing_password,
        room_max_publishers=_env_int("ROOM_MAX_PUBLISHERS", 16, minimum=1),
        room_max_observers=_env_int("ROOM_MAX_OBSERVERS", 50, minimum=0),
        reconnect_grace_seconds=_env_float("RECONNECT_GRACE_SECONDS", 30.0, minimum=0.0),
        signaling_event_rate=_env_float("SIGNALING_EVENT_RATE", 20.0, minimum=0.1),
        signaling_event_burst=_env_int("SIGNALING_EVENT_BURST", 60, minimum=1),
        signaling_max_event_bytes=_env_int("SIGNALING_MAX_EVENT_BYTES", 256 * 1024,
                                           minimum=1024),
        room_stats_interval_seconds=_env_float("ROOM_STATS_INTERVAL_SECONDS", 2.0,
                                               minimum=0.1),
        turn_urls=turn_urls,
        turn_secret=turn_secret,
        turn_ttl_seconds=_env_int("TURN_TTL_SECONDS", 3600, minimum=60,
                                  maximum=MAX_MINUTES * 60),
    )
