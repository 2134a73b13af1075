"""DIMSE over TLS (PS3.15 B.9): dcmtk's storescu and echoscu with certificates made here."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydicom.data import get_testdata_file
from sqlalchemy import select

from app.config import ConfigError, load_settings
from app.db.engine import create_engine, session_factory
from app.pacs.models import DicomInstance
from app.pacs.scp import tls_context
from hoichan.server import create_app
from tests.conftest import JWT_SECRET, fresh_database, make_settings
from tests.pacs.orthanc import free_port
from tests.pacs.scp_helpers import open_scp, run
from tests.pki import issue_pem

CT = get_testdata_file("CT_small.dcm")
CT_UID = str(pydicom.dcmread(CT, stop_before_pixels=True).SOPInstanceUID)


@dataclass(frozen=True)
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    stranger_cert: Path  # signed by another CA
    stranger_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = issue_pem(folder, "ca", "Hoichan test CA", None)
    issue_pem(folder, "server", "localhost", ca, server=True)
    issue_pem(folder, "client", "PACS", ca)
    issue_pem(folder, "stranger", "PACS", issue_pem(folder, "other-ca", "Another CA", None))
    return Pki(*(folder / f for f in ("ca.crt", "server.crt", "server.key", "client.crt",
                                      "client.key", "stranger.crt", "stranger.key")))


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # SQLite only: what is checked here is the transport; the index is checked on both
    # databases by test_scp.py.
    return fresh_database(request, tmp_path, "sqlite")


def verify_server(pki: Pki) -> list[str]:
    """dcmtk options that check our certificate against the CA."""
    return ["+cf", str(pki.ca)]


async def storescu(port: int, *tls: str) -> str:
    # storescu exits 0 even when the store failed: callers check what we hold.
    _, out = await run("storescu", *tls, "-ta", "5", "-aec", "HOICHAN", "127.0.0.1",
                       str(port), CT)
    return out


async def stored(sessions) -> list[str]:
    async with sessions() as s:
        return list(await s.scalars(select(DicomInstance.sop_instance_uid)))


async def test_the_app_serves_dimse_over_tls_only(pki, tmp_path, database_url):
    port = free_port()
    (tmp_path / "data").mkdir()
    settings = make_settings(database_url, tmp_path / "data", dicom_port=port,
                             dicom_tls_cert=pki.server_cert, dicom_tls_key=pki.server_key)
    engine = create_engine(database_url)
    async with TestClient(TestServer(create_app(settings))):
        code, out = await run("echoscu", "+tla", *verify_server(pki), "-aec", "HOICHAN",
                              "127.0.0.1", str(port))
        assert code == 0, out
        out = await storescu(port)  # no TLS: the handshake fails, nothing is stored
        assert "Association Request Failed" in out, out
        assert await stored(session_factory(engine)) == []
        await storescu(port, "+tla", *verify_server(pki))
        assert await stored(session_factory(engine)) == [CT_UID]
    await engine.dispose()


async def test_with_a_ca_only_callers_it_certified_may_store(pki, settings):
    context = tls_context(pki.server_cert, pki.server_key, pki.ca)
    async with open_scp(settings.database_url, settings.data_dir,
                        ssl_context=context) as scp:
        out = await storescu(scp.port, "+tla", *verify_server(pki))  # no certificate
        assert "Association Request Failed" in out, out
        out = await storescu(scp.port, "+tls", str(pki.stranger_key), str(pki.stranger_cert),
                             *verify_server(pki))
        assert "Association Request Failed" in out, out
        assert await stored(scp.sessions) == []
        await storescu(scp.port, "+tls", str(pki.client_key), str(pki.client_cert),
                       *verify_server(pki))
        assert await stored(scp.sessions) == [CT_UID]


async def test_a_silent_connection_does_not_hold_up_other_callers(pki, settings):
    context = tls_context(pki.server_cert, pki.server_key, None)
    async with open_scp(settings.database_url, settings.data_dir,
                        ssl_context=context) as scp:
        with socket.create_connection(("127.0.0.1", scp.port)):  # connects, says nothing
            code, out = await asyncio.wait_for(run(
                "echoscu", "+tla", *verify_server(pki), "-to", "5", "-ta", "5", "-aec",
                "HOICHAN", "127.0.0.1", str(scp.port)), 15)
            assert code == 0, out


@pytest.mark.parametrize("names,message", [
    (("CERT",), "set both HOICHAN_DICOM_TLS_CERT and HOICHAN_DICOM_TLS_KEY"),
    (("KEY",), "set both HOICHAN_DICOM_TLS_CERT and HOICHAN_DICOM_TLS_KEY"),
    (("CA",), "HOICHAN_DICOM_TLS_CA needs HOICHAN_DICOM_TLS_CERT"),
    (("CERT", "KEY", "MISSING_CA"), "HOICHAN_DICOM_TLS_CA"),
    (("CERT", "CLIENT_KEY"), "cannot be used"),  # a key that is not the certificate's
])
def test_tls_settings_are_checked_at_start(pki, tmp_path, monkeypatch, names, message):
    values = {"CERT": ("CERT", pki.server_cert), "KEY": ("KEY", pki.server_key),
              "CA": ("CA", pki.ca), "MISSING_CA": ("CA", tmp_path / "nowhere.pem"),
              "CLIENT_KEY": ("KEY", pki.client_key)}
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOICHAN_JWT_SECRET", JWT_SECRET)
    for name in names:
        variable, path = values[name]
        monkeypatch.setenv(f"HOICHAN_DICOM_TLS_{variable}", str(path))
    with pytest.raises(ConfigError, match=message):
        load_settings()


def test_tls_settings_when_complete(pki, tmp_path, monkeypatch):
    monkeypatch.setenv("HOICHAN_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HOICHAN_JWT_SECRET", JWT_SECRET)
    for variable, path in [("CERT", pki.server_cert), ("KEY", pki.server_key),
                           ("CA", pki.ca)]:
        monkeypatch.setenv(f"HOICHAN_DICOM_TLS_{variable}", str(path))
    settings = load_settings()
    assert (settings.dicom_tls_cert, settings.dicom_tls_key, settings.dicom_tls_ca) == (
        pki.server_cert, pki.server_key, pki.ca)
