"""A real PACS for the tests: Debian's Orthanc on free 127.0.0.1 ports with its own storage.

Orthanc 1.10 has no bind-address option, so it is kept private by configuration: HTTP
answers loopback only, and DICOM peers must be the configured ones (notes/real-peers.md).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.app_process import accepts
from tests.waiting import poll_blocking

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Orthanc:
    process: subprocess.Popen[bytes]
    http_port: int
    dicom_port: int
    aet: str = "ORTHANC"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        # Its storage goes with the test, so nothing needs a clean shutdown, which takes
        # Orthanc 3.5 s (about 1.5 min of the suite).
        self.process.kill()
        self.process.wait()

    async def upload(self, data: bytes) -> str:
        async with (aiohttp.ClientSession() as http,
                    http.post(f"{self.url}/instances", data=data) as r):
            assert r.status == 200, await r.text()
            return str((await r.json())["ID"])

    async def push(self, modality: str, resource: str) -> dict[str, object]:
        async with (aiohttp.ClientSession() as http,
                    http.post(f"{self.url}/modalities/{modality}/store",
                              json={"Resources": [resource], "Synchronous": True}) as r):
            return {"status": r.status, "body": await r.text()}


def start_orthanc(folder: Path, peers: dict[str, tuple[str, int]]) -> Orthanc:
    http_port, dicom_port = free_port(), free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "test-pacs", "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"), "HttpPort": http_port,
        "DicomPort": dicom_port, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False, "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False, "StableAge": 5, "SaveJobs": False,
        "DicomModalities": {name: [aet, "127.0.0.1", port]
                            for name, (aet, port) in peers.items()},
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/",
                     "Host": f"127.0.0.1:{http_port}"},
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config))
    # dcmtk (Orthanc's DICOM layer) leaves Nagle on unless told: each pushed object would
    # then wait for a delayed ACK (about 20 objects a second).
    process = subprocess.Popen([ORTHANC, f"--logfile={folder / 'orthanc.log'}", str(path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "TCP_NODELAY": "1"})
    orthanc = Orthanc(process, http_port, dicom_port)
    if poll_blocking(lambda: accepts(http_port) or process.poll() is not None, 20, 0.1) \
            and process.poll() is None:
        return orthanc
    orthanc.stop()
    raise RuntimeError(f"Orthanc did not start: {(folder / 'orthanc.log').read_text()[-2000:]}")
