"""The imaging path, Hoichan against Orthanc on the same machine: ingest, frames, first frame.

One synthetic 512x512 int16 CT series (``app.pacs.synth``, 500 slices by default) goes into
two real servers started here, each on free 127.0.0.1 ports with its own temp storage:

- Hoichan as in production: ``hoichan migrate`` then ``hoichan serve`` (its C-STORE SCP on),
  with an admin created by ``hoichan create-user``, on SQLite in the temp data dir and on
  PostgreSQL (a database made on 127.0.0.1:5432 for the run and dropped after it), one whole
  comparison after the other (``--database`` for only one);
- Debian's Orthanc (``/usr/sbin/Orthanc``) with its DICOMweb plugin (notes/real-peers.md).

Phases, each printed as it ends, then a table:

1. Ingest: dcmtk ``storescu +sd +r`` pushes the folder over one association. Both stores
   fsync every object before answering. ``--rounds`` rounds, each on its own copy of the
   series (same pixels, new UIDs), the order of the servers alternating from round to round;
   the best round per server is kept. The same
   push into ``storescp --ignore`` (dcmtk, receives and keeps nothing) gives the client and
   transport ceiling; the same into a bare pynetdicom SCP (the library Hoichan's SCP is built
   on, keeping nothing) gives the ceiling of that library. While each server ingests, a ping
   (an HTTP GET that 404s, every 20 ms) measures how long its HTTP side stalls.
2. WADO-RS frames: frame 1 of every instance of the series, uncompressed
   (``multipart/related; type="application/octet-stream"``, ``Accept-Encoding: identity``),
   ``--concurrency`` requests in flight, ``--rounds`` rounds in alternating order, best kept;
   then one round with one request at a time (latency without queueing).
3. Time to first frame: a new client (new connection) asks QIDO series of the study, QIDO
   instances of the first series, then the first instance's frame 1; median of ``--ttff-runs``.
   Hoichan's login is done beforehand and not counted (a viewer has its token already).

For each phase the servers' CPU seconds (all threads, /proc/PID/stat) and peak RSS (VmHWM,
reset through /proc/PID/clear_refs before the phase) are measured, and so is the CPU used by
other processes of the machine (/proc/stat less the servers and this client): a busy machine
shows there. The benchmark client runs on the same cores, so these are same-machine figures.
Everything stops by itself (``--timeout``), every server is killed and the temp dir removed
at the end (servers also die with the benchmark if it is killed: setpriv --pdeathsig).

``--profile-dir DIR`` also samples Hoichan with py-spy (``--py-spy PATH``, e.g. installed with
``pip install --target /tmp/pyspy py-spy``) during the second ingest and frames rounds and
writes collapsed stacks (``*.txt``) and the heaviest functions of the non-idle samples
(``*.top.txt``); profiled rounds run slower.

    .venv/bin/python bench/imaging.py [--slices 500] [--rounds 3] [--concurrency 4] [--ttff-runs 5]
                                      [--database both|sqlite|postgresql] [--timeout 280]
                                      [--profile-dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from pydicom import dcmread
from pydicom.filewriter import dcmwrite
from pydicom.uid import generate_uid

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.pacs.synth import series as synth_series

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
HOICHAN = ROOT / ".venv" / "bin" / "hoichan"
FRAME_ACCEPT = 'multipart/related; type="application/octet-stream"'
DICOM_JSON = "application/dicom+json"
CLK_TCK = os.sysconf("SC_CLK_TCK")
ADMIN_EMAIL = "bench.admin@bench.hoichan.vn"
# Debian's dcmtk 3.6.7 (storescu, storescp, and Orthanc's DICOM layer) leaves Nagle's
# algorithm on unless TCP_NODELAY=1 is in the environment: every object then waits for a
# delayed ACK, about 45 ms (20 objects/s whatever the receiver). Set for every dcmtk process.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}

# ------------------------------------------------------------------ processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def orphan_proof(command: list[str]) -> list[str]:
    """``command`` killed by the kernel if this benchmark dies (util-linux setpriv sets
    PR_SET_PDEATHSIG, then execs: same PID), so no server outlives an interrupted run."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


def cpu_seconds(pid: int) -> float:
    """User + system CPU of every thread of ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy_s() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not waiting on I/O)."""
    v = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(v) - v[3] - v[4]) / CLK_TCK


def own_cpu_s() -> float:
    """This process and its waited-for children (storescu)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def reset_peak_rss(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_port(port: int, process: subprocess.Popen[bytes], log: Path,
                    seconds: float = 30, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited: {log.read_text()[-2000:]}")
        try:
            with socket.create_connection((host, port), 0.2):
                return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {host}:{port} after {seconds} s")


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    http_port: int
    dicom_port: int
    aet: str
    dicomweb: str  # path of the DICOMweb root, no trailing slash
    token: str = ""
    log: Path = Path()
    host: str = "127.0.0.1"  # the address its HTTP and DICOM ports are reached at

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def headers(self, **more: str) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**auth, **more}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def run_cli(args: list[str], env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run([str(HOICHAN), *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"hoichan {' '.join(args)} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


async def start_hoichan(folder: Path, host: str = "127.0.0.1",
                        settings: dict[str, str] | None = None) -> Server:
    """Hoichan as in production, bound to ``host`` (an address of this network namespace),
    with ``settings`` (``HOICHAN_*`` variables) on top of the bench's own."""
    folder.mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    password = secrets.token_urlsafe(18)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOICHAN_")}
    env.update({
        "HOICHAN_DATA_DIR": str(folder),
        "HOICHAN_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'hoichan.db'}",
        "HOICHAN_HOST": host, "HOICHAN_PORT": str(http_port),
        "HOICHAN_DICOM_PORT": str(dicom_port), "HOICHAN_DICOM_AE_TITLE": "HOICHAN",
        "HOICHAN_NEW_PASSWORD": password,
    })
    env.update(settings or {})
    run_cli(["migrate"], env)
    run_cli(["create-hospital", "BENCH", "Bench hospital", "--tier", "central"], env)
    run_cli(["create-user", ADMIN_EMAIL, "--role", "admin", "--hospital", "BENCH"], env)
    if not (ROOT / "frontend" / "dist" / "index.html").is_file():
        # `hoichan serve` refuses to start without it, as in production.
        raise SystemExit("the browser app is not built: run `make frontend` first")
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(orphan_proof([str(HOICHAN), "serve"]), env=env, stdout=out,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server("hoichan", process, http_port, dicom_port, "HOICHAN", "/dicomweb", log=log,
                    host=host)
    try:
        await wait_port(http_port, process, log, host=host)
        await wait_port(dicom_port, process, log, host=host)
        async with aiohttp.ClientSession() as http, http.post(
                f"{server.url}/api/auth/login",
                json={"email": ADMIN_EMAIL, "password": password}) as r:
            if r.status != 200:
                raise RuntimeError(f"login: {r.status} {await r.text()}")
            server.token = (await r.json())["access_token"]
        # An admin reads patient images only under a grant (app/api/break_glass.py).
        async with aiohttp.ClientSession() as http, http.post(
                f"{server.url}/api/break-glass", json={
                    "reason": "benchmark of the imaging server", "minutes": 240},
                headers={"Authorization": f"Bearer {server.token}"}) as r:
            if r.status != 201:
                raise RuntimeError(f"break-glass: {r.status} {await r.text()}")
    except BaseException:
        server.stop()
        raise
    return server


async def start_orthanc(folder: Path, host: str = "127.0.0.1") -> Server:
    """Debian's Orthanc as in tests/pacs/orthanc.py: loopback-only HTTP, own storage. With
    another ``host`` (only inside a private network namespace: Orthanc 1.10 listens on every
    address of its namespace) HTTP answers remote callers too."""
    folder.mkdir(parents=True)
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "bench-pacs", "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"), "HttpPort": http_port,
        "DicomPort": dicom_port, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": host != "127.0.0.1",
        "AuthenticationEnabled": False, "DicomCheckModalityHost": True,
        "DicomAlwaysAllowEcho": True, "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": False, "DicomAlwaysAllowGet": False,
        "DicomAlwaysAllowMove": False, "StableAge": 5, "SaveJobs": False,
        "SyncStorageArea": True,  # the default since 1.7.4, stated: Hoichan fsyncs too
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": f"{host}:{http_port}"},
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config))
    log = folder / "orthanc.log"
    process = subprocess.Popen(orphan_proof([ORTHANC, f"--logfile={log}", str(path)]),
                               env=DCMTK_ENV,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL)
    server = Server("orthanc", process, http_port, dicom_port, "ORTHANC", "/dicom-web", log=log,
                    host=host)
    try:
        await wait_port(dicom_port, process, log, host=host)
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{server.url}/system") as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("Orthanc does not answer /system")
                await asyncio.sleep(0.1)
    except BaseException:
        server.stop()
        raise
    return server


async def start_null_scp(folder: Path) -> Server:
    """dcmtk's storescp --ignore: takes every object and keeps nothing."""
    folder.mkdir(parents=True)
    port = free_port()
    log = folder / "storescp.log"
    with log.open("wb") as out:
        process = subprocess.Popen(orphan_proof(["storescp", "--ignore", "-aet", "NULLSCP",
                                                 str(port)]),
                                   env=DCMTK_ENV, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=folder)
    server = Server("storescp --ignore", process, 0, port, "NULLSCP", "", log=log)
    await wait_port(port, process, log)
    return server


PYNETDICOM_SCP = """
import sys
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
ae = AE(ae_title="PYNETDICOM")
for context in AllStoragePresentationContexts:
    ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
def on_store(event):
    bytes(event.encoded_dataset())  # what Hoichan's SCP does before its ingest
    return 0x0000
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True,
                evt_handlers=[(evt.EVT_C_STORE, on_store)])
"""


async def start_pynetdicom_scp(folder: Path) -> Server:
    """A bare pynetdicom C-STORE SCP (same library and contexts as Hoichan's), keeping nothing."""
    folder.mkdir(parents=True)
    port = free_port()
    log = folder / "pynetdicom.log"
    with log.open("wb") as out:
        command = [sys.executable, "-c", PYNETDICOM_SCP, str(port)]
        process = subprocess.Popen(orphan_proof(command),
                                   stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    server = Server("pynetdicom SCP", process, 0, port, "PYNETDICOM", "", log=log)
    await wait_port(port, process, log)
    return server


class Pinger:
    """An HTTP GET every 20 ms to a path that answers 404 at once: how long the server's
    HTTP side is kept waiting while it does something else."""

    def __init__(self, server: Server) -> None:
        self.url = f"{server.url}/api/bench-ping-404"
        self.latencies: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                async with http.get(self.url) as r:
                    await r.read()
                self.latencies.append(time.perf_counter() - t0)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), 0.02)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> list[float]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.latencies


# ------------------------------------------------------------------ measurements


@dataclass
class Usage:
    """A server's CPU and peak memory over one phase."""
    cpu_s: float = float("nan")
    peak_mb: float = float("nan")


@dataclass
class Phase:
    usage: dict[str, Usage]
    wall_s: float
    others_cores: float  # CPU of every other process of the machine, in cores
    client_cores: float


class Watch:
    """CPU seconds and peak RSS of some servers between ``start()`` and ``stop()``, and the
    machine's other load meanwhile."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.cpu0: dict[str, float] = {}
        self.peak_ok: dict[str, bool] = {}
        self.t0 = self.busy0 = self.own0 = 0.0

    def start(self) -> None:
        for s in self.servers:
            self.peak_ok[s.name] = reset_peak_rss(s.pid)
            self.cpu0[s.name] = cpu_seconds(s.pid)
        self.t0, self.busy0, self.own0 = time.perf_counter(), machine_busy_s(), own_cpu_s()

    def stop(self) -> Phase:
        wall = time.perf_counter() - self.t0
        busy, own = machine_busy_s() - self.busy0, own_cpu_s() - self.own0
        usage = {s.name: Usage(cpu_seconds(s.pid) - self.cpu0[s.name],
                               peak_rss_mb(s.pid) if self.peak_ok[s.name] else float("nan"))
                 for s in self.servers}
        others = busy - own - sum(u.cpu_s for u in usage.values())
        return Phase(usage, wall, max(others, 0.0) / wall, own / wall)


class Profiler:
    """py-spy sampling a server while a phase runs (only with --profile-dir)."""

    def __init__(self, py_spy: str | None, folder: Path | None) -> None:
        self.py_spy, self.folder = py_spy, folder
        self.process: subprocess.Popen[bytes] | None = None
        self.output: Path | None = None

    def start(self, server: Server, label: str) -> None:
        if not (self.py_spy and self.folder):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.output = self.folder / f"{server.name}-{label}.txt"
        self.process = subprocess.Popen(
            orphan_proof([self.py_spy, "record", "--pid", str(server.pid), "--format", "raw",
                          "--rate", "200", "--threads", "--output", str(self.output)]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached before the load starts

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.process = None
        if self.output and self.output.exists():
            summarize_profile(self.output)


# Leaves of a sampled stack that mean "waiting", not working (py-spy's own idle detection
# does not see these threads as idle here): selectors, condition and queue waits, the 1 ms
# polling sleeps of pynetdicom's reactors, idle executor and aiosqlite threads.
IDLE_LEAVES = ("Selector.select", "Condition.wait", "Event.wait", "Queue.get",
               "(pynetdicom/dul.py:403)", "(pynetdicom/association.py:714)",
               "(aiosqlite/core.py:59)", "(aiosqlite/core.py:63)",
               "(concurrent/futures/thread.py:81)", "(concurrent/futures/thread.py:83)",
               "AssociationServer.service_actions", "AssociationSocket.ready")


def summarize_profile(path: Path, top: int = 40) -> None:
    """Write ``*.top.txt`` beside py-spy's collapsed stacks: of the non-idle samples, the
    share each function is on the stack (inclusive) and on top (self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames and frames[0].startswith("thread ("):
            frames = frames[1:]
        if not frames or any(m in frames[-1] for m in IDLE_LEAVES):
            idle += n
            continue
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    out = io.StringIO()
    out.write(f"{total} busy samples ({idle} idle left out), all threads\n\n"
              "inclusive (on the stack):\n")
    for name, n in inclusive.most_common(top):
        out.write(f"{100 * n / max(total, 1):5.1f}%  {name}\n")
    out.write("\nself (on top):\n")
    for name, n in own.most_common(top):
        out.write(f"{100 * n / max(total, 1):5.1f}%  {name}\n")
    path.with_suffix(".top.txt").write_text(out.getvalue())


def generate(folder: Path, slices: int) -> str:
    folder.mkdir(parents=True)
    study_uid = generate_uid()
    for i, data in enumerate(synth_series(study_uid, slices)):
        (folder / f"{i:04d}.dcm").write_bytes(data)
    return study_uid


def relabel(source: Path, folder: Path) -> str:
    """A copy of the series with new study, series and SOP instance UIDs (same pixels)."""
    folder.mkdir(parents=True)
    study_uid = generate_uid()
    series_uid = generate_uid()
    for path in sorted(source.iterdir()):
        ds = dcmread(path)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dcmwrite(folder / path.name, ds, enforce_file_format=True)
    return study_uid


async def push(server: Server, folder: Path, log: Path, timeout: float) -> float:
    """storescu over one association; the wall time in seconds."""
    t0 = time.perf_counter()
    with log.open("ab") as out:
        process = await asyncio.create_subprocess_exec(
            *orphan_proof(["storescu", "-aet", "BENCH", "-aec", server.aet, "+sd", "+r", "-nh",
                           server.host, str(server.dicom_port), str(folder)]),
            env=DCMTK_ENV, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    return time.perf_counter() - t0


def tag(item: dict[str, Any], key: str) -> Any:
    values = item.get(key, {}).get("Value") or [None]
    return values[0]


async def qido(http: aiohttp.ClientSession, server: Server, path: str) -> list[dict[str, Any]]:
    async with http.get(f"{server.url}{server.dicomweb}{path}",
                        headers=server.headers(Accept=DICOM_JSON)) as r:
        if r.status == 204:
            return []
        if r.status != 200:
            raise RuntimeError(f"{server.name} QIDO {path}: {r.status} {await r.text()}")
        return list(await r.json(content_type=None))


async def stored_count(server: Server, study_uid: str) -> int:
    """Instances of the study the server holds (storescu's exit status tells nothing)."""
    async with aiohttp.ClientSession() as http:
        rows = await qido(http, server, f"/studies/{study_uid}/series")
    return sum(int(tag(r, "00201209") or 0) for r in rows)


def frame_payload(body: bytes) -> bytes:
    """The first part of a multipart/related body (boundary taken from the body itself)."""
    boundary = body.split(b"\r\n", 1)[0]
    _head, _, rest = body.partition(b"\r\n\r\n")
    return rest.split(b"\r\n" + boundary, 1)[0]


async def frame_urls(server: Server, study_uid: str) -> list[str]:
    async with aiohttp.ClientSession() as http:
        series = await qido(http, server, f"/studies/{study_uid}/series")
        series_uid = tag(series[0], "0020000E")
        rows = await qido(http, server, f"/studies/{study_uid}/series/{series_uid}/instances"
                          "?includefield=00200013")
    rows.sort(key=lambda r: int(tag(r, "00200013") or 0))
    return [f"{server.url}{server.dicomweb}/studies/{study_uid}/series/{series_uid}/instances/"
            f"{tag(r, '00080018')}/frames/1" for r in rows]


async def fetch_frames(server: Server, urls: list[str], concurrency: int
                       ) -> tuple[float, list[float], int, bytes]:
    """Wall seconds, per-request latencies, bytes, and the first frame's pixel bytes."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    latencies: list[float] = []
    received = 0
    first = b""
    headers = server.headers(Accept=FRAME_ACCEPT, **{"Accept-Encoding": "identity"})
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False) as http:

        async def worker() -> None:
            nonlocal received, first
            while not queue.empty():
                url = queue.get_nowait()
                t0 = time.perf_counter()
                async with http.get(url, headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{server.name} {url}: {r.status} {body[:300]!r}")
                latencies.append(time.perf_counter() - t0)
                received += len(body)
                if url == urls[0]:
                    first = frame_payload(body)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return wall, latencies, received, first


async def first_frame(server: Server, study_uid: str) -> tuple[float, list[float]]:
    """A cold client: new session and connection; QIDO series -> instances -> frame 1."""
    steps: list[float] = []
    t0 = time.perf_counter()
    async with aiohttp.ClientSession() as http:
        series = await qido(http, server, f"/studies/{study_uid}/series")
        steps.append(time.perf_counter() - t0)
        series_uid = tag(series[0], "0020000E")
        rows = await qido(http, server, f"/studies/{study_uid}/series/{series_uid}/instances"
                          "?includefield=00200013")
        steps.append(time.perf_counter() - t0)
        sop = tag(min(rows, key=lambda r: int(tag(r, "00200013") or 0)), "00080018")
        url = (f"{server.url}{server.dicomweb}/studies/{study_uid}/series/{series_uid}/"
               f"instances/{sop}/frames/1")
        async with http.get(url, headers=server.headers(
                Accept=FRAME_ACCEPT, **{"Accept-Encoding": "identity"})) as r:
            body = await r.read()
            if r.status != 200 or len(body) < 512 * 512 * 2:
                raise RuntimeError(f"{server.name} first frame: {r.status} {len(body)} bytes")
    wall = time.perf_counter() - t0
    steps.append(wall)
    return wall, steps


# ------------------------------------------------------------------ the run


@dataclass
class Results:
    slices: int = 0
    generate_s: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    ingest: dict[str, list[float]] = field(default_factory=dict)  # seconds per round
    ingest_phase: dict[str, list[Phase]] = field(default_factory=dict)
    ingest_ping: dict[str, list[list[float]]] = field(default_factory=dict)
    # reference SCP -> (seconds, its CPU seconds)
    reference: dict[str, tuple[float, float]] = field(default_factory=dict)
    frames: dict[str, list[tuple[float, list[float], int]]] = field(default_factory=dict)
    frames_phase: dict[str, list[Phase]] = field(default_factory=dict)
    single: dict[str, tuple[float, list[float], int]] = field(default_factory=dict)
    ttff: dict[str, list[tuple[float, list[float]]]] = field(default_factory=dict)
    ttff_phase: Phase | None = None
    same_pixels: bool | None = None


def fmt_usage(u: Usage) -> str:
    return f"{u.cpu_s:.1f} s / {u.peak_mb:.0f} MB"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def versions(orthanc: Server) -> dict[str, str]:
    import pydicom
    import pynetdicom

    found = {"python": sys.version.split()[0], "pydicom": pydicom.__version__,
             "pynetdicom": pynetdicom.__version__}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{orthanc.url}/system") as r:
            found["Orthanc"] = (await r.json()).get("Version", "?")
        async with http.get(f"{orthanc.url}/plugins/dicom-web") as r:
            found["orthanc-dicomweb"] = (await r.json()).get("Version", "?") \
                if r.status == 200 else "?"
    done = subprocess.run(["storescu", "--version"], capture_output=True, text=True,
                          check=False)
    found["dcmtk"] = done.stdout.split()[2] if len(done.stdout.split()) > 2 else "?"
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "app"],
                           capture_output=True, text=True, check=False).stdout.strip()
    found["hoichan"] = (head or "?") + (" + uncommitted app/ changes" if dirty else "")
    return found


# The PostgreSQL every machine of this kind runs (trust auth), as the tests use it.
PG_HOST, PG_USER, PG_ADMIN_DB = "127.0.0.1", "postgres", "test"


@contextlib.asynccontextmanager
async def database(kind: str, folder: Path) -> AsyncIterator[str]:
    """Hoichan's database URL for ``kind``: a file in ``folder``, or a PostgreSQL database
    made for this run and dropped after it."""
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'hoichan.db'}"
        return
    name = f"hoichan_bench_{os.getpid()}_{secrets.token_hex(3)}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(host=PG_HOST, user=PG_USER, database=PG_ADMIN_DB)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    await admin(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:5432/{name}"
    finally:
        await admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def run(args: argparse.Namespace, tmp: Path, servers: list[Server],
              results: Results, database_url: str) -> None:
    t0 = time.perf_counter()
    study_a = generate(tmp / "ct-1", args.slices)
    studies = [study_a] + [relabel(tmp / "ct-1", tmp / f"ct-{i}")
                           for i in range(2, args.rounds + 1)]
    results.slices = args.slices
    results.generate_s = time.perf_counter() - t0
    print(f"generated {args.slices} slices of 512x512 int16 CT (study {study_a}) and "
          f"{args.rounds - 1} copies with new UIDs in {results.generate_s:.1f} s", flush=True)

    # 0. references: what the client, the transport and pynetdicom can do at best ------------
    for start in (start_null_scp, start_pynetdicom_scp):
        reference = await start(tmp / start.__name__)
        servers.append(reference)
        watch = Watch([reference])
        watch.start()
        seconds = await push(reference, tmp / "ct-1", tmp / "storescu.log", 120)
        cpu = watch.stop().usage[reference.name].cpu_s
        reference.stop()
        results.reference[reference.name] = (seconds, cpu)
        print(f"ingest reference {reference.name} (keeps nothing): "
              f"{args.slices / seconds:.1f} instances/s, CPU {ms(cpu / args.slices)} ms per "
              "instance", flush=True)

    hoichan, orthanc = await asyncio.gather(
        start_hoichan(tmp / "hoichan", settings={"HOICHAN_DATABASE_URL": database_url}),
        start_orthanc(tmp / "orthanc"))
    servers += [hoichan, orthanc]
    results.versions = await versions(orthanc)
    print(f"hoichan pid {hoichan.pid} http :{hoichan.http_port} dicom :{hoichan.dicom_port}; "
          f"orthanc pid {orthanc.pid} http :{orthanc.http_port} dicom :{orthanc.dicom_port}",
          flush=True)
    profiler = Profiler(args.py_spy, args.profile_dir)
    both = [hoichan, orthanc]

    # 1. ingest -------------------------------------------------------------------------
    # Each round its own copy of the series (a repeated SOP Instance UID would be a no-op),
    # the order of the servers alternating from round to round.
    orders = [[hoichan, orthanc], [orthanc, hoichan]]
    for number, study in enumerate(studies, 1):
        folder = tmp / f"ct-{number}"
        for server in orders[(number - 1) % 2]:
            if number == 2 and server is hoichan:
                profiler.start(hoichan, "ingest")
            watch, pinger = Watch(both), Pinger(server)
            watch.start()
            pinger.start()
            seconds = await push(server, folder, tmp / "storescu.log", 150)
            pings = await pinger.stop()
            phase = watch.stop()
            profiler.stop()
            count = await stored_count(server, study)
            if count != args.slices:
                raise RuntimeError(f"{server.name} holds {count} of {args.slices} instances "
                                   f"after storescu (see {tmp / 'storescu.log'})")
            results.ingest.setdefault(server.name, []).append(seconds)
            results.ingest_phase.setdefault(server.name, []).append(phase)
            results.ingest_ping.setdefault(server.name, []).append(pings)
            print(f"ingest round {number} {server.name}: {args.slices / seconds:.1f} "
                  f"instances/s ({seconds:.2f} s); CPU/peak RSS "
                  f"{fmt_usage(phase.usage[server.name])}; HTTP ping p50/max "
                  f"{ms(statistics.median(pings))}/{ms(max(pings))} ms; other load "
                  f"{phase.others_cores:.2f} cores", flush=True)

    # 2. WADO-RS frames -----------------------------------------------------------------
    urls = {s.name: await frame_urls(s, study_a) for s in both}
    for s in both:
        if len(urls[s.name]) != args.slices:
            raise RuntimeError(f"{s.name} lists {len(urls[s.name])} instances")
    firsts: dict[str, bytes] = {}
    plan = [(number, server, args.concurrency) for number in range(1, args.rounds + 1)
            for server in orders[(number - 1) % 2]]
    if args.concurrency != 1:
        plan += [(0, server, 1) for server in both]  # one request at a time: no queueing
    for number, server, concurrency in plan:
        if number == 2 and server is hoichan:
            profiler.start(hoichan, "frames")
        watch = Watch(both)
        watch.start()
        wall, latencies, received, first = await fetch_frames(server, urls[server.name],
                                                              concurrency)
        phase = watch.stop()
        profiler.stop()
        firsts[server.name] = first
        if concurrency == 1 and args.concurrency != 1:
            results.single[server.name] = (wall, latencies, received)
            label = "1 in flight"
        else:
            results.frames.setdefault(server.name, []).append((wall, latencies, received))
            results.frames_phase.setdefault(server.name, []).append(phase)
            label = f"round {number}"
        print(f"frames {label} {server.name}: {len(latencies) / wall:.1f} frames/s "
              f"({received / wall / 1e6:.0f} MB/s, p50 {ms(statistics.median(latencies))} "
              f"ms); CPU/peak RSS {fmt_usage(phase.usage[server.name])}; other load "
              f"{phase.others_cores:.2f} cores", flush=True)
    results.same_pixels = firsts["hoichan"] == firsts["orthanc"] and len(
        firsts["hoichan"]) == 512 * 512 * 2

    # 3. time to first frame ------------------------------------------------------------
    watch = Watch(both)
    watch.start()
    for _ in range(args.ttff_runs):
        for server in both:
            results.ttff.setdefault(server.name, []).append(await first_frame(server, study_a))
    results.ttff_phase = watch.stop()
    for s in both:
        walls = [w for w, _ in results.ttff[s.name]]
        print(f"first frame {s.name}: median {ms(statistics.median(walls))} ms "
              f"(runs: {', '.join(f'{w * 1000:.0f}' for w in walls)} ms)", flush=True)


def print_table(r: Results, args: argparse.Namespace) -> None:
    n = r.slices
    best_in = {k: min(range(len(v)), key=v.__getitem__) for k, v in r.ingest.items()}
    best_fr = {k: min(range(len(v)), key=[x[0] for x in v].__getitem__)
               for k, v in r.frames.items()}
    rate_in = {k: n / r.ingest[k][i] for k, i in best_in.items()}
    fr = {k: r.frames[k][i] for k, i in best_fr.items()}
    rate_fr = {k: len(fr[k][1]) / fr[k][0] for k in fr}
    use_in = {k: r.ingest_phase[k][i].usage[k] for k, i in best_in.items()}
    use_fr = {k: r.frames_phase[k][i].usage[k] for k, i in best_fr.items()}
    ping = {k: [x for pings in v for x in pings] for k, v in r.ingest_ping.items()}
    tt = {k: statistics.median(w for w, _ in v) for k, v in r.ttff.items()}

    def steps(name: str) -> str:
        s = [statistics.median(x[1][i] for x in r.ttff[name]) * 1000 for i in range(3)]
        return f"{s[0]:.0f} + {s[1] - s[0]:.0f} + {s[2] - s[1]:.0f} ms"

    def lat(name: str) -> str:
        return f"{ms(pct(fr[name][1], 0.5))} / {ms(pct(fr[name][1], 0.95))} ms"

    ttff_use = r.ttff_phase.usage if r.ttff_phase else {}
    others = [p.others_cores for v in (*r.ingest_phase.values(), *r.frames_phase.values())
              for p in v] + ([r.ttff_phase.others_cores] if r.ttff_phase else [])
    load = os.getloadavg()
    print(f"\nImaging path: {n} slices of 512x512 int16 CT (512 KiB of pixels each), "
          f"{os.cpu_count()} cores, client on the same machine; "
          + ", ".join(f"{k} {v}" for k, v in r.versions.items()))
    print(f"other processes used {min(others):.2f}-{max(others):.2f} cores during the phases "
          f"(load average now {load[0]:.1f})\n")
    print("| measure | Hoichan | Orthanc | Hoichan / Orthanc |")
    print("|---|---|---|---|")
    rounds = len(r.ingest["hoichan"])
    print(f"| C-STORE ingest, storescu, one association (best of {rounds}) | "
          f"{rate_in['hoichan']:.1f} "
          f"inst/s | {rate_in['orthanc']:.1f} inst/s | "
          f"**{rate_in['hoichan'] / rate_in['orthanc']:.2f}** |")
    print(f"| ingest: server CPU per instance / peak RSS | {ms(use_in['hoichan'].cpu_s / n)} ms "
          f"/ {use_in['hoichan'].peak_mb:.0f} MB | {ms(use_in['orthanc'].cpu_s / n)} ms / "
          f"{use_in['orthanc'].peak_mb:.0f} MB | "
          f"{use_in['hoichan'].cpu_s / use_in['orthanc'].cpu_s:.1f}x CPU |")
    def pings(name: str) -> str:
        return (f"{ms(pct(ping[name], 0.5))} / {ms(pct(ping[name], 0.99))} / "
                f"{ms(max(ping[name]))} ms")

    print("| ingest: HTTP ping p50 / p99 / max while ingesting (all rounds) | "
          f"{pings('hoichan')} | "
          f"{pings('orthanc')} | |")
    print(f"| WADO-RS frames, {args.concurrency} in flight (best of {rounds}) | "
          f"{rate_fr['hoichan']:.1f} frames/s | {rate_fr['orthanc']:.1f} frames/s | "
          f"**{rate_fr['hoichan'] / rate_fr['orthanc']:.2f}** |")
    print(f"| frames: latency p50 / p95 | {lat('hoichan')} | {lat('orthanc')} | |")
    if r.single:
        one = {k: len(v[1]) / v[0] for k, v in r.single.items()}
        print(f"| WADO-RS frames, 1 in flight | {one['hoichan']:.1f} frames/s, p50 "
              f"{ms(pct(r.single['hoichan'][1], 0.5))} ms | {one['orthanc']:.1f} frames/s, p50 "
              f"{ms(pct(r.single['orthanc'][1], 0.5))} ms | "
              f"{one['hoichan'] / one['orthanc']:.2f} |")
    print(f"| frames: server CPU per frame / peak RSS | {ms(use_fr['hoichan'].cpu_s / n)} ms / "
          f"{use_fr['hoichan'].peak_mb:.0f} MB | {ms(use_fr['orthanc'].cpu_s / n)} ms / "
          f"{use_fr['orthanc'].peak_mb:.0f} MB | "
          f"{use_fr['hoichan'].cpu_s / use_fr['orthanc'].cpu_s:.1f}x CPU |")
    print(f"| time to first frame, cold client (median of {len(r.ttff['hoichan'])}) | "
          f"{ms(tt['hoichan'])} ms | {ms(tt['orthanc'])} ms | "
          f"**{tt['hoichan'] / tt['orthanc']:.2f}** (time) |")
    print(f"| first frame: QIDO series + QIDO instances + frame | {steps('hoichan')} | "
          f"{steps('orthanc')} | |")
    if ttff_use:
        print(f"| first-frame runs: server CPU / peak RSS | {fmt_usage(ttff_use['hoichan'])} | "
              f"{fmt_usage(ttff_use['orthanc'])} | |")
    print("\nRatios: for rates above 1 means Hoichan is faster; for the first frame (a time) "
          "above 1 means Hoichan is slower.")
    print("Ingest references (keep nothing): " + ", ".join(
        f"{k} {n / v[0]:.0f} inst/s, {ms(v[1] / n)} ms CPU per instance"
        for k, v in r.reference.items()))
    print("Ingest rounds (s): " + "; ".join(
        f"{k} {', '.join(f'{x:.2f}' for x in v)}" for k, v in r.ingest.items())
        + " (odd rounds Hoichan first, even rounds Orthanc first)")
    print("Frames rounds (s): " + "; ".join(
        f"{k} {', '.join(f'{x[0]:.2f}' for x in v)}" for k, v in r.frames.items())
        + " (odd rounds Hoichan first, even rounds Orthanc first)")
    print(f"Frame 1 pixel bytes identical from both servers: {r.same_pixels}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3,
                        help="ingest and frames rounds per server (best kept)")
    parser.add_argument("--ttff-runs", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=280,
                        help="seconds per database after which everything is stopped")
    parser.add_argument("--profile-dir", type=Path, default=None,
                        help="sample Hoichan with py-spy in the second rounds, write here")
    parser.add_argument("--py-spy", default=shutil.which("py-spy"))
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, stores)")
    parser.add_argument("--database", choices=("both", "sqlite", "postgresql"), default="both")
    args = parser.parse_args()
    for tool in (ORTHANC, DICOMWEB_PLUGIN, shutil.which("storescu"), shutil.which("storescp"),
                 str(HOICHAN)):
        if not tool or not os.path.exists(tool):
            print(f"missing {tool or 'dcmtk'}: apt-get install -y orthanc orthanc-dicomweb "
                  "dcmtk; make run (for .venv)", file=sys.stderr)
            return 2
    if args.profile_dir and not args.py_spy:
        print("--profile-dir needs py-spy (--py-spy PATH)", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="hoichan-bench-imaging-"))
    servers: list[Server] = []
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    started = time.perf_counter()
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    try:
        for kind in kinds:
            print(f"\n=== Hoichan on {kind} ===", flush=True)
            (tmp / kind).mkdir()
            results = Results()
            async with database(kind, tmp / kind / "hoichan") as url:
                try:
                    await asyncio.wait_for(run(args, tmp / kind, servers, results, url),
                                           args.timeout)
                finally:
                    for server in servers:
                        server.stop()
                    servers.clear()
            print(f"\n=== Hoichan on {kind} ===")
            print_table(results, args)
        return 0
    except TimeoutError:
        print(f"stopped after --timeout {args.timeout:.0f} s", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"total {time.perf_counter() - started:.0f} s; servers stopped"
              + ("" if args.keep else ", temp dir removed"), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
