"""The audit trail reaches a hospital's collector: Debian's rsyslog, receiving over TLS
(RFC 5425) with a certificate of a CA made here, gets every event as a DICOM audit message
(PS3.15 A.5), and what happened while it was down arrives once it is back."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from app.audit_export import syslog
from app.config import Settings
from tests.api.dbcheck import audit_events
from tests.conftest import make_settings
from tests.pacs.orthanc import free_port
from tests.pki import issue_pem
from tests.waiting import poll, poll_blocking

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
GUESSER = "khong.ai@benhvien-khac.vn"


@dataclass
class Collector:
    folder: Path
    port: int
    ca: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def received(self) -> Path:
        return self.folder / "received.log"

    def start(self) -> None:
        conf = self.folder / "rsyslog.conf"
        conf.write_text(f"""
global(workDirectory="{self.folder}" DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{self.ca}"
       DefaultNetstreamDriverCertFile="{self.folder}/server.crt"
       DefaultNetstreamDriverKeyFile="{self.folder}/server.key")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="{self.port}" address="127.0.0.1")
template(name="audit" type="string" string="%msgid% %app-name% %msg%\\n")
*.* action(type="omfile" file="{self.received}" template="audit")
""")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(conf), "-i",
                                      str(self.folder / "pid")], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.proc.stderr
            return subprocess.run(["ss", "-ltn", f"sport = :{self.port}"], capture_output=True,
                                  text=True).stdout.count("LISTEN") > 0

        assert poll_blocking(listening, 10, 0.05), "rsyslogd did not listen"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def messages(self) -> list[tuple[str, ET.Element]]:
        """(MSGID, AuditMessage) of every message received so far."""
        if not self.received.exists():
            return []
        out = []
        for line in self.received.read_text(encoding="utf-8").splitlines():
            msgid, app_name, xml = line.split(" ", 2)
            assert app_name == "hoichan"
            out.append((msgid, ET.fromstring(xml.removeprefix("\ufeff").encode())))
        return out


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    folder = tmp_path / "rsyslog"
    folder.mkdir()
    ca = issue_pem(folder, "ca", "Hospital audit CA", None)
    issue_pem(folder, "server", "localhost", ca, server=True)
    c = Collector(folder, free_port(), folder / "ca.crt")
    c.start()
    yield c
    c.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, collector: Collector) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    return make_settings(database_url, data_dir, audit_syslog=("127.0.0.1", collector.port),
                         audit_syslog_ca=str(collector.ca), node_id="hoichan-test-node")


def _event_type(message: ET.Element) -> str:
    [ours] = [c for c in message.iter("EventTypeCode") if c.get("codeSystemName") == "Hoichan"]
    return str(ours.get("csd-code"))


async def test_every_event_reaches_the_collector_as_a_dicom_audit_message(
        client, world, collector, monkeypatch, caplog):
    monkeypatch.setattr(syslog, "RETRY_S", 0.3)
    r = await client.post("/api/auth/login", json={"email": GUESSER, "password": "x" * 8})
    assert r.status == 401
    assert (await client.get("/dicomweb/studies/1.2.3/metadata",
                             headers=world.auth("NDI"))).status == 404

    async def all_sent() -> list[tuple[str, ET.Element]] | None:
        messages = collector.messages()
        return messages if len(messages) == len(await audit_events(world.settings)) else None

    messages = await poll(all_sent, 15, 0.2)
    events = await audit_events(world.settings)
    assert messages, f"{len(collector.messages())} of {len(events)} events received"
    assert {msgid for msgid, _ in messages} == {"DICOM+RFC3881"}
    assert sorted(_event_type(m) for _, m in messages) == sorted(e.action for e in events)

    by_type = {_event_type(m): m for _, m in messages}
    login = by_type["auth.login"]
    ident = login.find("EventIdentification")
    assert ident is not None and ident.get("EventOutcomeIndicator") == "4"
    assert login.find("EventIdentification/EventID").get("csd-code") == "110114"
    assert login.find("ActiveParticipant").get("UserID") == GUESSER
    assert login.find("EventIdentification/EventOutcomeDescription").text == "unknown account"
    assert login.find("AuditSourceIdentification").get("AuditSourceID") == "hoichan-test-node"
    read = by_type["dicomweb.metadata"]
    [refusal] = [e for e in events if e.action == "dicomweb.metadata"]
    assert read.find("EventIdentification").get("EventOutcomeIndicator") == {
        "failure": "4", "denied": "8"}[refusal.outcome]
    obj = read.find("ParticipantObjectIdentification")
    assert obj.get("ParticipantObjectID") == "1.2.3"
    assert obj.find("ParticipantObjectIDTypeCode").get("csd-code") == "110180"
    detail = json.loads(base64.b64decode(obj.find("ParticipantObjectDetail").get("value")))
    assert detail["status"] == 404

    # Down, then back: what happened meanwhile arrives, and nothing twice.
    collector.stop()
    for _ in range(3):
        await client.post("/api/auth/login", json={"email": GUESSER, "password": "y" * 8})
    # The shipper tries, fails (and says so), keeps its cursor.
    assert await poll(lambda: "failed, retrying" in caplog.text, 10)
    collector.start()
    messages = await poll(all_sent, 15, 0.2)
    assert messages, f"{len(collector.messages())} of {len(events) + 3} events after the outage"
    assert sorted(_event_type(m) for _, m in messages) == sorted(
        e.action for e in await audit_events(world.settings))


@pytest.mark.parametrize("action,code,verb", [
    ("auth.login", "110114", "E"), ("auth.lockout", "110113", "E"),
    ("dicomweb.frames", "110103", "R"), ("dicomweb.search_studies", "110112", "E"),
    ("dicomweb.store", "110107", "C"), ("pacs.import.done", "110107", "C"),
    ("minutes.pdf", "110106", "R"), ("audit.export", "110106", "R"),
    ("user.update", "110113", "U"), ("case.create", "110110", "C"),
    ("case.delete", "110110", "D"), ("room.join_token", "110110", "E"),
])
def test_each_action_has_its_dicom_event(action, code, verb):
    from app.audit_export.dicom_message import event_codes

    got, got_verb = event_codes(action)
    assert (got.code, got_verb) == (code, verb)
