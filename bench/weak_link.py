"""The viewer over a weak link: Hoichan and Orthanc serving a CT to a follower at a commune or
district health station, through a shaped link between private network namespaces.

Needs root (network namespaces, tc), Debian ``orthanc`` + ``orthanc-dicomweb``, dcmtk, and the
project's ``.venv``. One run, bounded by ``--timeout``:

1. A synthetic 512x512 int16 chest CT (``app.pacs.synth``, the generator of
   ``hoichan synth-ct``; ``--slices``, default 500) is written to files; its noise is checked
   by compressing three slices losslessly with imagecodecs, since a smooth synthetic image
   would compress unrealistically well.
2. ``bench/shaped_link.py`` builds three namespaces: the servers', a middle one that shapes,
   the client's, joined by veth pairs on 198.18.0.1 (server) and 198.18.0.2 (client). This
   kernel has no netem, so the middle namespace holds each frame for the one-way delay and
   drops it with the loss probability in a relay process, and tbf gives the rate and a
   bottleneck FIFO of ``--queue-ms``; the same each way.
3. In the server namespace (this script re-runs itself there): Hoichan as in production
   (``hoichan migrate``, an admin, ``hoichan serve`` on 198.18.0.1, SQLite in a temp dir; the
   helpers of ``bench/imaging.py``) and Orthanc with its DICOMweb plugin (own temp storage;
   ``RemoteAccessAllowed`` only because it is inside the private namespace). The SAME files
   go into both with dcmtk ``storescu``. Then one local pass over every frame of every path
   (unshaped): Hoichan encodes a frame the first time it is asked in a syntax, so that work
   is measured there once and the shaped runs see a warm server.
4. For each profile (``--profile``: commune 8 Mbit/s, 100 ms RTT, 0.5 % loss each way;
   district 30 Mbit/s, 40 ms RTT) and each path, a new client process in the client
   namespace does what the browser does, with a new connection pool and an empty cache (a
   Python aiohttp client making the viewer's requests in its order, not Chromium: no
   decode, rendering or series thumbnail on the clock):

   - opening the case: QIDO ``/studies?StudyInstanceUID=``, ``/studies/{s}/series``, WADO-RS
     series ``/metadata`` (``Accept-Encoding: gzip``, as a browser asks for JSON), then the
     frame at the controller's slice (the middle of the stack, instances sorted by position
     as the viewer sorts them): **first image** is the time from the first request until
     that frame's last byte;
   - frames ``GET .../instances/{sop}/frames/1`` with ``Accept-Encoding: identity`` and the
     path's Accept; every multipart response is parsed and each part's bytes and
     transfer syntax counted;
   - the wanted slice is requested at once (at most 2 such requests in flight: the newest
     and one it overtook), and prefetch (``--prefetch``, default 2 in flight, the viewer's
     ``PREFETCH_CONCURRENCY``) starts nothing while it is on its way, then goes outward from
     it in both directions, the way the last move went first; a pool of 6 connections (a
     browser's HTTP/1.1 limit per host), so a wanted slice never waits for one
     (frontend/src/viewer/loadOrder.ts);
   - preview (frontend/src/viewer/preview.ts): 150 ms after a slice is wanted, if its frame
     is not there, ``.../frames/1/rendered?viewport=256,256&quality=70`` with
     ``Accept: image/jpeg``; its time is reported apart, it does not end the wait;
   - run "whole": open, then prefetch until every slice is there: **whole series** time
     (from opening) and bytes (frame bodies; also what the client's veth carried);
   - run "jumps": open again, then ``--jumps`` (20) random jumps while prefetch runs. The
     controller's side is played by this process in the server namespace: after the follower
     shows a slice it waits a random ``--dwell`` (1-2 s) and sends the next jump over its own
     TCP connection through the same shaped link, as the room's sync message would travel;
     the jump's target is a random slice not yet loaded and not within 5 % of the stack of
     the current one. **Jump time** = from the controller sending the jump until the new
     slice's last byte is at the follower (sync delivery + request + response; a slice that
     prefetch already has counts the sync delivery only). Decode is measured apart (below),
     not added.

   Paths: Hoichan with the browser's Accept (frontend/src/viewer/frameAccept.ts: HTJ2K and
   ``transfer-syntax=*`` q=1, JPEG-LS q=0.9, J2K q=0.8, uncompressed q=0.5: the server
   picks), Hoichan uncompressed only ("today"), Orthanc ``transfer-syntax=*``, Orthanc
   uncompressed.
5. Each client decodes up to 10 received frames per transfer syntax once more with
   imagecodecs (HTJ2K with OpenJPH, JPEG-LS with CharLS; one thread, the browser's WASM
   decoders are slower) and reports the median ms per frame, and checks those frames and the
   jump frames against the stored pixels (lossless: same 16-bit patterns).

Prints per profile a table (first image, jump p50 / p95 / max, whole series time and MB,
bytes vs uncompressed pixels, time ratios vs today's uncompressed path and vs Orthanc
``transfer-syntax=*``), the goals of issue 13 checked, the breakdown of the jumps and of the
opening, and the run's date, commit and load. ``--markdown FILE`` writes the same there.

Everything the run made (namespaces, veths, tc, processes, temp dirs) is removed at the end,
also on Ctrl-C, SIGTERM, an exception or the ``--timeout``; the servers, relay and clients
die with their parent (setpriv --pdeathsig) and the namespaces of a run killed with SIGKILL
are removed by the next run.

    sudo .venv/bin/python bench/weak_link.py [--profile commune|district|both] [--slices 500]
        [--jumps 20] [--quick] [--prefetch 2] [--queue-ms 100]
        [--timeout 5400] [--markdown FILE]

500 slices took 24 min on commune and 9 min on district (2 cores, 2026-12-03); ``--quick``
(60 slices, 5 jumps) about 4 min.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gzip
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import imaging  # noqa: E402  (bench/imaging.py: servers, ingest, QIDO helpers)
from shaped_link import (  # noqa: E402
    PROFILES,
    SERVER_ADDRESS,
    Profile,
    ShapedLink,
    remove_stale,
)

ROOT = imaging.ROOT
ROWS = COLS = 512
FRAME_BYTES = ROWS * COLS * 2
EXPLICIT_LE = "1.2.840.10008.1.2.1"
# frontend/src/viewer/frameAccept.ts FRAME_ACCEPT, as the viewer sends it
BROWSER_ACCEPT = ", ".join([
    'multipart/related; type="image/jphc"; transfer-syntax=1.2.840.10008.1.2.4.201; q=1',
    'multipart/related; type="application/octet-stream"; transfer-syntax=*; q=1',
    'multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.80; q=0.9',
    'multipart/related; type="image/jp2"; transfer-syntax=1.2.840.10008.1.2.4.90; q=0.8',
    'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1;'
    ' q=0.5',
])
# frontend/src/viewer/loadOrder.ts and preview.ts; a browser's connections per host (HTTP/1.1)
PREFETCH_CONCURRENCY = 2
INTERACTION_CONCURRENCY = 2
CONNECTIONS = 6
PREVIEW_DELAY_S = 0.150
PREVIEW_PARAMS = {"viewport": "256,256", "quality": "70"}
VERIFY_FRAMES = 10  # frames per transfer syntax decoded and compared with the stored pixels
UNCOMPRESSED_ACCEPT = ('multipart/related; type="application/octet-stream"; '
                       f'transfer-syntax={EXPLICIT_LE}')
ANY_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
SYNTAX_NAMES = {
    EXPLICIT_LE: "uncompressed", "1.2.840.10008.1.2": "implicit LE",
    "1.2.840.10008.1.2.4.80": "JPEG-LS", "1.2.840.10008.1.2.4.81": "JPEG-LS near",
    "1.2.840.10008.1.2.4.90": "J2K", "1.2.840.10008.1.2.4.91": "J2K",
    "1.2.840.10008.1.2.4.201": "HTJ2K", "1.2.840.10008.1.2.4.202": "HTJ2K RPCL",
    "1.2.840.10008.1.2.4.203": "HTJ2K", "1.2.840.10008.1.2.5": "RLE",
}


@dataclass(frozen=True)
class FramePath:
    key: str
    server: str  # "hoichan" | "orthanc"
    accept: str
    label: str


PATHS = [
    FramePath("hoichan-browser", "hoichan", BROWSER_ACCEPT, "Hoichan, browser's Accept"),
    FramePath("hoichan-today", "hoichan", UNCOMPRESSED_ACCEPT, "Hoichan, uncompressed (today)"),
    FramePath("orthanc-any", "orthanc", ANY_ACCEPT, "Orthanc, transfer-syntax=*"),
    FramePath("orthanc-raw", "orthanc", UNCOMPRESSED_ACCEPT, "Orthanc, uncompressed"),
]
TODAY, ORTHANC_ANY = "hoichan-today", "orthanc-any"


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


# ====================================================================== the client
# Runs in the client namespace (``--role client --config FILE``), prints one JSON line.


@dataclass
class Record:
    index: int
    kind: str  # "interaction" | "prefetch"
    started: float = 0.0
    head: float = 0.0
    done: float = 0.0
    body_bytes: int = 0
    payload_bytes: int = 0
    syntax: str = ""
    media: str = ""
    new_connection: bool = False
    payload: bytes = b""


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(part Content-Type, part bytes) of a multipart/related body."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        if chunk.startswith(b"\r\n"):
            chunk = chunk[2:]
        head, _, payload = chunk.partition(b"\r\n\r\n")
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        ctype = ""
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                ctype = value.strip()
        parts.append((ctype, payload))
    return parts


def syntax_of(part_type: str, response_type: str) -> str:
    for source in (part_type, response_type):
        for param in source.split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "transfer-syntax":
                return value.strip('"')
    return EXPLICIT_LE if "octet-stream" in part_type else "?"


def position_order(instances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The viewer's order (frontend/src/viewer/dicomweb.ts sortInstances): by position on
    the slice normal, highest first, else by InstanceNumber."""
    def values(item: dict[str, Any], tag: str) -> list[float] | None:
        v = item.get(tag, {}).get("Value")
        try:
            return [float(x) for x in v] if v else None
        except (TypeError, ValueError):
            return None

    orientation = values(instances[0], "00200037") if instances else None
    positions = [values(i, "00200032") for i in instances]
    if orientation and len(orientation) == 6 and all(p and len(p) == 3 for p in positions):
        r0, r1, r2, c0, c1, c2 = orientation
        normal = (r1 * c2 - r2 * c1, r2 * c0 - r0 * c2, r0 * c1 - r1 * c0)
        depth = [sum(p[k] * normal[k] for k in range(3)) for p in positions]  # type: ignore[index]
        return [i for _, i in sorted(zip(depth, instances, strict=True), key=lambda x: -x[0])]
    return sorted(instances, key=lambda i: float(imaging.tag(i, "00200013") or 0))


def outward(center: int, count: int, direction: int) -> list[int]:
    """frontend/src/viewer/loadOrder.ts outward(): the centre, then alternately one further
    in ``direction`` and one further against it."""
    out = [center]
    d = 1
    while center + d < count or center - d >= 0:
        for i in (center + d * direction, center - d * direction):
            if 0 <= i < count:
                out.append(i)
        d += 1
    return out


class Loader:
    """frontend/src/viewer/loadOrder.ts ``LoadQueue`` over aiohttp: the wanted slice is
    requested at once (at most ``INTERACTION_CONCURRENCY`` such requests in flight: the
    newest, and one it overtook); prefetch, at most ``prefetch`` in flight, goes outward from
    it, the way the last move went first, and starts nothing while it is on its way."""

    def __init__(self, http: Any, urls: list[str], headers: dict[str, str],
                 prefetch: int) -> None:
        self.http, self.urls, self.headers, self.prefetch = http, urls, headers, prefetch
        self.count = len(urls)
        self.cache: dict[int, Record] = {}
        self.inflight: dict[int, str] = {}
        self.arrival: dict[int, asyncio.Future[Record]] = {}
        self.wanted: int | None = None
        self.direction = 1
        self.prefetch_on = False
        self.fetching = self.prefetching = 0
        self.all_loaded = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.error: BaseException | None = None
        self.kept: Counter[str] = Counter()

    def _future(self, index: int) -> asyncio.Future[Record]:
        if index not in self.arrival:
            self.arrival[index] = asyncio.get_running_loop().create_future()
        return self.arrival[index]

    def want(self, index: int) -> asyncio.Future[Record]:
        """The slice to show now; its Record when its last byte is here."""
        if self.wanted is not None and index != self.wanted:
            self.direction = 1 if index > self.wanted else -1
        self.wanted = index
        future = self._future(index)
        self.pump()
        return future

    def pump(self) -> None:
        w = self.wanted
        if w is None:
            return
        if (w not in self.cache and w not in self.inflight
                and self.fetching < INTERACTION_CONCURRENCY):
            self._start(w, "interaction")
        if not self.prefetch_on or w not in self.cache:
            return
        for i in outward(w, self.count, self.direction):
            if self.prefetching >= self.prefetch:
                break
            if i not in self.cache and i not in self.inflight:
                self._start(i, "prefetch")

    def _start(self, index: int, kind: str) -> None:
        if kind == "prefetch":
            self.prefetching += 1
        else:
            self.fetching += 1
        self.inflight[index] = kind
        task = asyncio.create_task(self._fetch(index, kind))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _fetch(self, index: int, kind: str) -> None:
        import aiohttp

        rec = Record(index, kind)
        trace: dict[str, float] = {}
        try:
            rec.started = time.monotonic()
            async with self.http.get(self.urls[index], headers=self.headers,
                                     trace_request_ctx=trace) as r:
                rec.head = time.monotonic()
                body = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{self.urls[index]}: HTTP {r.status} {body[:300]!r}")
                response_type = r.headers.get("Content-Type", "")
            rec.done = time.monotonic()
            parts = parse_multipart(response_type, body)
            if len(parts) != 1:
                raise RuntimeError(f"{len(parts)} parts in the answer for frame 1")
            rec.media, payload = parts[0]
            rec.syntax = syntax_of(rec.media, response_type)
            rec.body_bytes, rec.payload_bytes = len(body), len(payload)
            # kept for the decode and lossless checks: the wanted slices and a few others
            if kind == "interaction" or self.kept[rec.syntax] < VERIFY_FRAMES:
                rec.payload = payload
                self.kept[rec.syntax] += 1
            rec.new_connection = "connect_end" in trace
        except (TimeoutError, aiohttp.ClientError, RuntimeError, ValueError) as exc:
            self.error = exc
            future = self._future(index)
            if not future.done():
                future.set_exception(exc)
            self.all_loaded.set()
            return
        finally:
            if kind == "prefetch":
                self.prefetching -= 1
            else:
                self.fetching -= 1
            self.inflight.pop(index, None)
        self.cache[index] = rec
        future = self._future(index)
        if not future.done():
            future.set_result(rec)
        if len(self.cache) == self.count:
            self.all_loaded.set()
        self.pump()

    def start_prefetch(self) -> None:
        self.prefetch_on = True
        self.pump()


async def client_run(cfg: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    trace_config = aiohttp.TraceConfig()

    async def on_connect_start(_s: Any, ctx: Any, _p: Any) -> None:
        if isinstance(ctx.trace_request_ctx, dict):
            ctx.trace_request_ctx["connect_start"] = time.monotonic()

    async def on_connect_end(_s: Any, ctx: Any, _p: Any) -> None:
        if isinstance(ctx.trace_request_ctx, dict):
            ctx.trace_request_ctx["connect_end"] = time.monotonic()

    trace_config.on_connection_create_start.append(on_connect_start)
    trace_config.on_connection_create_end.append(on_connect_end)
    auth = {"Authorization": f"Bearer {cfg['token']}"} if cfg["token"] else {}
    base = cfg["base"]
    study = cfg["study"]
    out: dict[str, Any] = {"label": cfg["label"]}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, limit_per_host=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=120)
    controller = None
    if cfg["mode"] == "jumps":
        controller = await asyncio.open_connection(*cfg["controller"])
    async with aiohttp.ClientSession(connector=connector, auto_decompress=False,
                                     timeout=timeout, trace_configs=[trace_config]) as http:

        async def get_json(path: str) -> tuple[Any, int, str, dict[str, float]]:
            trace: dict[str, float] = {}
            async with http.get(f"{base}{path}", trace_request_ctx=trace, headers={
                    **auth, "Accept": "application/dicom+json",
                    "Accept-Encoding": "gzip"}) as r:
                raw = await r.read()
                if r.status not in (200, 204):
                    raise RuntimeError(f"{path}: HTTP {r.status} {raw[:300]!r}")
                encoding = r.headers.get("Content-Encoding", "identity")
            text = gzip.decompress(raw) if encoding == "gzip" else raw
            return (json.loads(text) if text else []), len(raw), encoding, trace

        t_open = time.monotonic()
        steps: dict[str, Any] = {}
        found, _, _, trace = await get_json(f"/studies?StudyInstanceUID={study}")
        steps["connect_s"] = trace.get("connect_end", 0.0) - trace.get("connect_start", 0.0)
        steps["studies_s"] = time.monotonic() - t_open
        if not found:
            raise RuntimeError("QIDO finds no study")
        series, _, _, _ = await get_json(f"/studies/{study}/series")
        steps["series_s"] = time.monotonic() - t_open
        series_uid = imaging.tag(series[0], "0020000E")
        meta, meta_bytes, meta_encoding, _ = await get_json(
            f"/studies/{study}/series/{series_uid}/metadata")
        steps["metadata_s"] = time.monotonic() - t_open
        steps["metadata_bytes"], steps["metadata_encoding"] = meta_bytes, meta_encoding
        ordered = position_order(meta)
        sops = [imaging.tag(i, "00080018") for i in ordered]
        urls = [f"{base}/studies/{study}/series/{series_uid}/instances/{sop}/frames/1"
                for sop in sops]
        headers = {**auth, "Accept": cfg["accept"], "Accept-Encoding": "identity"}
        loader = Loader(http, urls, headers, cfg["prefetch"])

        async def preview(index: int, since: float) -> float | None:
            """preview.ts: the rendered JPEG, asked PREVIEW_DELAY_MS after the slice was
            wanted if its frame is not there by then; seconds from ``since`` to its last
            byte, None if not asked (or refused: reported as not asked)."""
            await asyncio.sleep(PREVIEW_DELAY_S)
            if index in loader.cache:
                return None
            try:
                async with http.get(f"{urls[index]}/rendered", params=PREVIEW_PARAMS,
                                    headers={**auth, "Accept": "image/jpeg"}) as r:
                    await r.read()
                    return time.monotonic() - since if r.status == 200 else None
            except aiohttp.ClientError:
                return None

        async def show(index: int, since: float) -> tuple[Record, float | None]:
            """The viewer showing slice ``index``: its frame, and the preview while it comes."""
            frame = loader.want(index)
            previewing = asyncio.create_task(preview(index, since))
            rec = await asyncio.wait_for(frame, cfg["timeout"])
            shown = await previewing if previewing.done() else None
            previewing.cancel()
            return rec, shown

        center = len(urls) // 2
        first, first_preview = await show(center, t_open)
        t_first = first.done
        steps["frame_s"] = t_first - t_open
        out["first_image_s"] = t_first - t_open
        out["first_preview_s"] = first_preview
        out["open"] = steps
        out["first_frame"] = {"bytes": first.payload_bytes, "syntax": first.syntax,
                              "new_connection": first.new_connection,
                              "ttfb_s": first.head - first.started,
                              "transfer_s": first.done - first.head}
        loader.start_prefetch()
        jumps: list[dict[str, Any]] = []
        if cfg["mode"] == "whole":
            await asyncio.wait_for(loader.all_loaded.wait(), cfg["timeout"])
            if loader.error:
                raise loader.error
            out["whole_s"] = time.monotonic() - t_open
        else:
            assert controller is not None
            reader, writer = controller
            rng = random.Random(cfg["seed"])
            n = len(urls)
            for _ in range(cfg["jumps"]):
                # a slice not loaded yet (a jump to a loaded one measures nothing), away
                # from the current one (nearby ones are what prefetch fetches next)
                current = loader.wanted if loader.wanted is not None else center
                rest = [i for i in range(n) if i not in loader.cache and i not in
                        loader.inflight and abs(i - current) >= max(2, n // 20)]
                target = rng.choice(rest) if rest else rng.randrange(n)
                writer.write((json.dumps({"target": target, "after": rng.uniform(*cfg["dwell"])})
                              + "\n").encode())
                await writer.drain()
                message = json.loads(await reader.readline())
                t_recv = time.monotonic()
                how = ("loaded" if target in loader.cache else
                       "in flight" if target in loader.inflight else "requested")
                rec, shown_preview = await show(target, message["sent"])
                asked = how == "requested"
                jumps.append({
                    "target": target, "how": how, "total_s": rec.done - message["sent"]
                    if how != "loaded" else t_recv - message["sent"],
                    "preview_s": shown_preview, "sync_s": t_recv - message["sent"],
                    "ttfb_s": rec.head - rec.started if asked else 0,
                    "transfer_s": rec.done - rec.head if asked else 0,
                    "bytes": rec.payload_bytes, "syntax": rec.syntax,
                    "new_connection": rec.new_connection if asked else False,
                    "loaded_at_jump": len(loader.cache),
                })
            out["loaded_at_end"] = len(loader.cache)
            writer.close()
        if loader.error:
            raise loader.error
        out["jumps"] = jumps
        records = list(loader.cache.values())
        for task in list(loader.tasks):
            task.cancel()
    out["frames"] = len(records)
    out["body_bytes"] = sum(r.body_bytes for r in records)
    out["payload_bytes"] = sum(r.payload_bytes for r in records)
    out["syntaxes"] = dict(Counter(r.syntax for r in records))
    out["media"] = dict(Counter(r.media for r in records))
    out["connections_opened"] = sum(1 for r in records if r.new_connection)
    # decode cost and losslessness, off the clock
    samples: dict[str, list[Record]] = {}
    jump_targets = {j["target"] for j in jumps}
    for r in sorted(records, key=lambda r: (r.index not in jump_targets, r.started)):
        if r.payload and (len(samples.setdefault(r.syntax, [])) < VERIFY_FRAMES
                          or r.index in jump_targets):
            samples[r.syntax].append(r)
    out["decode"] = {ts: decode_check(ts, recs, sops, cfg["files"])
                     for ts, recs in samples.items()}
    return out


def decode_check(syntax: str, records: list[Record], sops: list[str],
                 files: dict[str, str]) -> dict[str, Any]:
    import numpy as np
    import pydicom

    def decode(payload: bytes) -> Any:
        import imagecodecs
        if syntax in (EXPLICIT_LE, "1.2.840.10008.1.2"):
            return np.frombuffer(payload, "<i2").reshape(ROWS, COLS).copy()
        if syntax in ("1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"):
            return imagecodecs.jpegls_decode(payload)
        if syntax.startswith("1.2.840.10008.1.2.4.20"):
            return imagecodecs.htj2k_decode(payload)
        if syntax in ("1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"):
            return imagecodecs.jpeg2k_decode(payload)
        raise ValueError(f"no decoder here for {syntax}")

    times: list[float] = []
    equal = checked = 0
    for r in records:
        try:
            t0 = time.perf_counter()
            pixels = decode(r.payload)
            times.append(time.perf_counter() - t0)
        except Exception as exc:  # noqa: BLE001  (reported, not fatal)
            return {"error": f"{type(exc).__name__}: {exc}"}
        stored = pydicom.dcmread(files[sops[r.index]])
        original = np.frombuffer(stored.PixelData, "<i2").reshape(ROWS, COLS)
        checked += 1
        equal += bool(pixels.shape == original.shape and np.array_equal(
            pixels.astype(np.int64) & 0xFFFF, original.astype(np.int64) & 0xFFFF))
    return {"decode_ms": statistics.median(times) * 1000 if times else None,
            "checked": checked, "lossless": equal}


def client_main(config_path: str) -> int:
    cfg = json.loads(Path(config_path).read_text())
    try:
        result = asyncio.run(asyncio.wait_for(client_run(cfg), cfg["timeout"] + 60))
    except BaseException as exc:  # noqa: BLE001  (reported to the orchestrator)
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(result))
    return 0


# ====================================================================== the orchestrator
# Runs in the server namespace (``--role orchestrate``).


class Controller:
    """The one in control, on the server side of the link: for each request of the
    follower's script (target, dwell) it waits the dwell and sends the jump, stamped."""

    def __init__(self) -> None:
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.port = imaging.free_port()
        self.server = await asyncio.start_server(self._serve, SERVER_ADDRESS, self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while line := await reader.readline():
                ask = json.loads(line)
                await asyncio.sleep(ask["after"])
                writer.write((json.dumps({"jump": ask["target"], "sent": time.monotonic()})
                              + "\n").encode())
                await writer.drain()
        writer.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()


def noise_check(folder: Path) -> str:
    import imagecodecs
    import numpy as np
    import pydicom

    files = sorted(folder.iterdir())
    ratios: dict[str, list[float]] = {"JPEG-LS": [], "HTJ2K": []}
    sigma = []
    for path in (files[len(files) // 5], files[len(files) // 2], files[4 * len(files) // 5]):
        pixels = pydicom.dcmread(path).pixel_array
        sigma.append(float(np.std(np.diff(pixels.astype(np.float64), axis=1)) / np.sqrt(2)))
        ratios["JPEG-LS"].append(pixels.nbytes / len(imagecodecs.jpegls_encode(
            pixels.view(np.uint16))))
        ratios["HTJ2K"].append(pixels.nbytes / len(imagecodecs.htj2k_encode(
            pixels, reversible=True)))
    return (f"pixel noise about {statistics.median(sigma):.0f} HU (pixel-to-pixel); lossless "
            + ", ".join(f"{k} {statistics.median(v):.2f}:1" for k, v in ratios.items())
            + " with imagecodecs (the issue's noisy slice: JPEG-LS 2.60:1, HTJ2K 2.33:1)")


async def warm(server: imaging.Server, study: str, accept: str, concurrency: int = 4
               ) -> dict[str, Any]:
    """Every frame once over the unshaped local path: the server's first-time work."""
    import aiohttp

    urls = await imaging.frame_urls(server, study)
    series_uid = urls[0].split("/series/")[1].split("/")[0]
    metadata_s = []
    async with aiohttp.ClientSession(auto_decompress=False) as http:
        for _ in range(3):
            t0 = time.monotonic()
            async with http.get(f"{server.url}{server.dicomweb}/studies/{study}/series/"
                                f"{series_uid}/metadata", headers=server.headers(
                                    Accept="application/dicom+json",
                                    **{"Accept-Encoding": "gzip"})) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{server.name} metadata: {r.status}")
            metadata_s.append(time.monotonic() - t0)
    headers = server.headers(Accept=accept, **{"Accept-Encoding": "identity"})
    queue = list(urls)
    syntaxes: Counter[str] = Counter()
    total = 0
    cpu0 = imaging.cpu_seconds(server.pid)
    t0 = time.monotonic()
    async with aiohttp.ClientSession(auto_decompress=False) as http:

        async def worker() -> None:
            nonlocal total
            while queue:
                url = queue.pop()
                async with http.get(url, headers=headers) as r:
                    body = await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{server.name} {url}: {r.status} {body[:300]!r}")
                    ctype = r.headers.get("Content-Type", "")
                (part, payload), = parse_multipart(ctype, body)
                syntaxes[syntax_of(part, ctype)] += 1
                total += len(payload)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"s": time.monotonic() - t0, "cpu_s": imaging.cpu_seconds(server.pid) - cpu0,
            "frames": len(urls), "bytes": total, "syntaxes": dict(syntaxes),
            "metadata_s": metadata_s}


async def run_client(link: ShapedLink, tmp: Path, cfg: dict[str, Any], timeout: float
                     ) -> dict[str, Any]:
    path = tmp / f"client-{cfg['label']}.json"
    path.write_text(json.dumps(cfg))
    log = tmp / "clients.log"
    with log.open("ab") as err:
        process = await asyncio.create_subprocess_exec(
            *imaging.orphan_proof(["ip", "netns", "exec", link.client_ns, sys.executable,
                                   __file__, "--role", "client", "--config", str(path)]),
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), timeout)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    lines = stdout.decode().strip().splitlines()
    if not lines:
        raise RuntimeError(f"client {cfg['label']} printed nothing (see {log})")
    result = json.loads(lines[-1])
    if "error" in result:
        raise RuntimeError(f"client {cfg['label']}: {result['error']}")
    return dict(result)


def tcp_retransmits() -> int:
    """Retransmitted TCP segments of this network namespace (the servers' side) so far."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()
             if line.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])


def git_state() -> str:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return (head or "?") + (" + the work tree's uncommitted changes" if dirty else "")


@dataclass
class Run:
    profile: str
    path: FramePath
    mode: str
    result: dict[str, Any]
    retransmits: int
    wire_rx: int
    server_cpu_s: float
    wall_s: float


async def orchestrate(args: argparse.Namespace) -> int:
    link = ShapedLink(owner_pid=args.link_pid)
    tmp = Path(tempfile.mkdtemp(prefix="hoichan-bench-weak-link-"))
    servers: list[imaging.Server] = []
    controller = Controller()
    report: list[str] = []
    started = time.monotonic()
    load_start = os.getloadavg()
    git_at_start = git_state()

    def say(line: str = "") -> None:
        print(line, flush=True)

    try:
        t0 = time.monotonic()
        study = imaging.generate(tmp / "ct", args.slices)
        noise = noise_check(tmp / "ct")
        say(f"generated {args.slices} slices of 512x512 int16 CT in "
            f"{time.monotonic() - t0:.1f} s; {noise}")
        hoichan, orthanc = await asyncio.gather(
            imaging.start_hoichan(tmp / "hoichan", host=SERVER_ADDRESS,
                                  settings={"HOICHAN_ACCESS_TOKEN_MINUTES": "600"}),
            imaging.start_orthanc(tmp / "orthanc", host=SERVER_ADDRESS))
        servers += [hoichan, orthanc]
        by_name = {"hoichan": hoichan, "orthanc": orthanc}
        versions = await imaging.versions(orthanc)
        for server in (hoichan, orthanc):
            seconds = await imaging.push(server, tmp / "ct", tmp / "storescu.log", 300)
            count = await imaging.stored_count(server, study)
            if count != args.slices:
                raise RuntimeError(f"{server.name} holds {count} of {args.slices} instances "
                                   f"(see {tmp / 'storescu.log'})")
            say(f"stored the same {args.slices} files into {server.name} in {seconds:.1f} s")
        import pydicom

        files = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID): str(p)
                 for p in sorted((tmp / "ct").iterdir())}
        warmups: dict[str, dict[str, Any]] = {}
        for p in PATHS:
            warmups[p.key] = await warm(by_name[p.server], study, p.accept)
            w = warmups[p.key]
            say(f"local pass (unshaped, 4 in flight) {p.label}: {w['s']:.1f} s, server CPU "
                f"{w['cpu_s'] / w['frames'] * 1000:.1f} ms/frame, "
                f"{w['bytes'] / w['frames'] / 1024:.0f} KiB/frame, {fmt_syntaxes(w['syntaxes'])}"
                f"; series metadata {fmt_ms(w['metadata_s'])}")
        await controller.start()
        runs: list[Run] = []
        link_stats: dict[str, dict[str, int]] = {}
        profiles = [PROFILES[p] for p in (["commune", "district"] if args.profile == "both"
                                          else [args.profile])]
        deadline = started + args.timeout - 30
        for profile in profiles:
            link.shape(profile, args.queue_ms, seed=args.seed)
            say(f"\nlink {profile.describe(args.queue_ms)}")
            for mode in ("whole", "jumps"):
                for p in PATHS:
                    server = by_name[p.server]
                    remaining = deadline - time.monotonic()
                    if remaining < 20:
                        raise TimeoutError("out of time (--timeout)")
                    cfg = {
                        "label": f"{profile.name}-{p.key}-{mode}",
                        "base": f"{server.url}{server.dicomweb}", "token": server.token,
                        "study": study, "accept": p.accept, "mode": mode,
                        "prefetch": args.prefetch, "jumps": args.jumps, "seed": args.seed,
                        "dwell": args.dwell, "controller": [SERVER_ADDRESS, controller.port],
                        "timeout": min(remaining, args.run_timeout), "files": files,
                    }
                    rx0, _ = link.client_bytes()
                    re0, cpu0, t_run = (tcp_retransmits(), imaging.cpu_seconds(server.pid),
                                        time.monotonic())
                    result = await run_client(link, tmp, cfg,
                                              min(remaining, args.run_timeout) + 90)
                    run = Run(profile.name, p, mode, result,
                              tcp_retransmits() - re0, link.client_bytes()[0] - rx0,
                              imaging.cpu_seconds(server.pid) - cpu0,
                              time.monotonic() - t_run)
                    runs.append(run)
                    say(describe_run(run))
            counters = link.relay_counters()
            link_stats[profile.name] = counters
            say(f"link counters {profile.name}: relay {counters}; tbf drops {link.tbf_drops()}")
            link.unshape()
        load_end = os.getloadavg()
        saved = {"args": {k: v for k, v in vars(args).items()}, "versions": versions,
                 "noise": noise, "warmups": warmups, "load_start": load_start,
                 "load_end": load_end, "elapsed_s": time.monotonic() - started,
                 "link_stats": link_stats, "measured": datetime.datetime.now().astimezone()
                 .strftime("%Y-%m-%d %H:%M %Z"),
                 "git": git_at_start if git_state() == git_at_start else
                 f"{git_at_start} when the servers started ({git_state()} at the end)",
                 "runs": [{**vars(r), "path": r.path.key} for r in runs]}
        Path(args.save).write_text(json.dumps(saved))
        say(f"raw results in {args.save} (--report-from rebuilds the report)")
        report = make_report(args, runs, profiles, versions, noise, warmups, load_start,
                             load_end, saved["elapsed_s"], link_stats, saved["measured"],
                             saved["git"])
        text = "\n".join(report)
        say("\n" + text)
        if args.markdown:
            Path(args.markdown).write_text(text + "\n")
            say(f"\nwritten to {args.markdown}")
        return 0
    finally:
        controller.stop()
        link.unshape()
        for server in servers:
            server.stop()
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        print(f"orchestrator: {time.monotonic() - started:.0f} s; servers stopped"
              + ("" if args.keep else ", temp dir removed"), file=sys.stderr)


def fmt_ms(seconds: list[float]) -> str:
    return " / ".join(f"{x * 1000:.0f}" for x in seconds) + " ms"


def fmt_syntaxes(counts: dict[str, int]) -> str:
    return ", ".join(f"{SYNTAX_NAMES.get(k, k)} x{v}" for k, v in counts.items())


def merged_decode(*runs: Run | None) -> dict[str, dict[str, Any]]:
    """Per syntax: the first run's decode ms, frames checked and found lossless over all."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        if run is None:
            continue
        for ts, d in run.result["decode"].items():
            if "error" in d:
                out[ts] = d
            elif ts not in out:
                out[ts] = dict(d)
            elif "error" not in out[ts]:
                out[ts]["checked"] += d["checked"]
                out[ts]["lossless"] += d["lossless"]
    return out


def jump_stats(result: dict[str, Any]) -> tuple[float, float, float]:
    t = [j["total_s"] for j in result["jumps"]]
    return (statistics.median(t), pct(t, 0.95), max(t)) if t else (float("nan"),) * 3


def describe_run(run: Run) -> str:
    r = run.result
    head = (f"  {run.path.label}, {run.mode}: first image "
            f"{r['first_image_s']:.2f} s")
    if run.mode == "whole":
        head += (f", whole series {r['whole_s']:.1f} s, {r['payload_bytes'] / 1e6:.1f} MB "
                 f"frames ({run.wire_rx / 1e6:.1f} MB on the wire)")
    else:
        p50, p95, mx = jump_stats(r)
        how = Counter(j["how"] for j in r["jumps"])
        head += (f", jumps p50/p95/max {p50:.2f}/{p95:.2f}/{mx:.2f} s "
                 f"({', '.join(f'{k} {v}' for k, v in how.items())})")
    return (head + f"; {fmt_syntaxes(r['syntaxes'])}; server CPU {run.server_cpu_s:.1f} s; "
            f"{run.retransmits} retransmits; {run.wall_s:.0f} s")


def fmt_s(seconds: float | None) -> str:
    return "none" if seconds is None else f"{seconds:.2f} s"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b and b == b and a == a else "–"


def make_report(args: argparse.Namespace, runs: list[Run], profiles: list[Profile],
                versions: dict[str, str], noise: str, warmups: dict[str, dict[str, Any]],
                load_start: tuple[float, ...], load_end: tuple[float, ...],
                elapsed_s: float, link_stats: dict[str, dict[str, int]], measured: str,
                git: str) -> list[str]:
    cc = Path("/proc/sys/net/ipv4/tcp_congestion_control").read_text().strip()
    out = [
        f"Weak link, {args.slices}-slice 512x512 int16 CT (512 KiB of pixels per slice, "
        f"{args.slices * FRAME_BYTES / 1e6:.0f} MB uncompressed), measured "
        f"{measured}, git {git}",
        f"machine: {os.cpu_count()} cores, load average at start "
        f"{' / '.join(f'{x:.1f}' for x in load_start)}, at end "
        f"{' / '.join(f'{x:.1f}' for x in load_end)} (1 / 5 / 15 min); kernel "
        f"{os.uname().release}, TCP congestion control {cc} (the machine's; the namespaces "
        "may not choose another here); "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "hoichan"),
        f"CT: {noise}",
        f"client: prefetch {args.prefetch} in flight"
        + f", at most {INTERACTION_CONCURRENCY} requests for the wanted slice, none started "
        f"while it is coming, {CONNECTIONS} connections (HTTP/1.1), "
        f"preview asked {PREVIEW_DELAY_S * 1000:.0f} ms after a slice is wanted if its frame "
        "is not there, "
        f"{args.jumps} jumps, dwell {args.dwell[0]:g}-{args.dwell[1]:g} s, seed {args.seed}; "
        f"run took {elapsed_s / 60:.0f} min",
        "",
        "Server side, local unshaped pass before the shaped runs (every frame once, 4 in "
        "flight): " + "; ".join(
            f"{p.label} {warmups[p.key]['s']:.1f} s, "
            f"{warmups[p.key]['cpu_s'] / warmups[p.key]['frames'] * 1000:.1f} ms CPU/frame, "
            f"{fmt_syntaxes(warmups[p.key]['syntaxes'])}" for p in PATHS),
        "",
        "Series metadata (WADO-RS, gzip), the same local way, three times in a row: " + "; ".join(
            f"{s} {fmt_ms(warmups[p.key].get('metadata_s', []))}" for s, p in
            (("Hoichan", PATHS[0]), ("Orthanc", PATHS[2]))),
    ]
    uncompressed = args.slices * FRAME_BYTES
    for profile in profiles:
        mine = [r for r in runs if r.profile == profile.name]
        whole = {r.path.key: r for r in mine if r.mode == "whole"}
        jumps = {r.path.key: r for r in mine if r.mode == "jumps"}
        out += ["", f"### {profile.describe(args.queue_ms)}", ""]
        out += ["| server / path | served as | first image (preview) | jump p50 / p95 / max "
                "| jump preview p50 / p95 | whole series | series MB (on the wire) | "
                "bytes vs uncompressed | whole time vs today / vs Orthanc * | "
                "first image vs today / vs Orthanc * | jump p95 vs today / vs Orthanc * | "
                "decode ms/frame, lossless |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        firsts = {k: statistics.median([r.result["first_image_s"] for r in mine
                                        if r.path.key == k]) for k in {r.path.key for r in mine}}
        p95 = {k: jump_stats(r.result)[1] for k, r in jumps.items()}
        for p in PATHS:
            w, j = whole.get(p.key), jumps.get(p.key)
            if w is None or j is None:
                continue
            j50, j95, jmax = jump_stats(j.result)
            previews = [x["preview_s"] for x in j.result["jumps"] if x["preview_s"] is not None]
            decode = "; ".join(
                f"{SYNTAX_NAMES.get(ts, ts)} {d['decode_ms']:.1f}, {d['lossless']}/{d['checked']}"
                if "error" not in d else f"{SYNTAX_NAMES.get(ts, ts)}: {d['error']}"
                for ts, d in merged_decode(w, j).items())
            t_today, t_any = whole[TODAY].result["whole_s"], whole[ORTHANC_ANY].result["whole_s"]
            first_preview = w.result.get("first_preview_s")
            out.append(
                f"| {p.label} | {fmt_syntaxes(w.result['syntaxes'])} | "
                f"{firsts[p.key]:.2f} s ({fmt_s(first_preview)}) | "
                f"{j50:.2f} / {j95:.2f} / {jmax:.2f} s | "
                + (f"{statistics.median(previews):.2f} / {pct(previews, 0.95):.2f} s "
                   f"({len(previews)} of {len(j.result['jumps'])})" if previews else "none")
                + f" | {w.result['whole_s']:.1f} s | {w.result['payload_bytes'] / 1e6:.1f} "
                f"({w.wire_rx / 1e6:.1f}) | {w.result['payload_bytes'] / uncompressed:.3f} | "
                f"{ratio(w.result['whole_s'], t_today)} / {ratio(w.result['whole_s'], t_any)} | "
                f"{ratio(firsts[p.key], firsts[TODAY])} / "
                f"{ratio(firsts[p.key], firsts[ORTHANC_ANY])} | "
                f"{ratio(j95, p95[TODAY])} / {ratio(j95, p95[ORTHANC_ANY])} | {decode} |")
        out += ["", "Where the jump time went (medians over the jumps that had to request "
                "their slice):", "",
                "| server / path | sync message | request to first byte | first to last byte "
                "| slice bytes | new connection | jumps to a slice not yet asked / in flight / "
                "loaded |", "|---|---|---|---|---|---|---|"]
        for p in PATHS:
            if p.key not in jumps:
                continue
            js = jumps[p.key].result["jumps"]
            asked = [x for x in js if x["how"] == "requested"] or js

            def med(field: str, rows: list[dict[str, Any]] = asked) -> float:
                return statistics.median(x[field] for x in rows)

            how = Counter(x["how"] for x in js)
            out.append(
                f"| {p.label} | {med('sync_s', js) * 1000:.0f} ms | "
                f"{med('ttfb_s') * 1000:.0f} ms | {med('transfer_s') * 1000:.0f} ms | "
                f"{med('bytes') / 1024:.0f} KiB | "
                f"{sum(x['new_connection'] for x in asked)}/{len(asked)} | "
                f"{how['requested']} / {how['in flight']} / {how['loaded']} |")
        out += ["", "Opening the case (whole-series runs): QIDO study / + series / + metadata "
                "/ + first frame, cumulative:", ""]
        out += ["| server / path | TCP connect | study | series | metadata (bytes, encoding) | "
                "first frame (bytes, syntax, request to first byte, first to last byte) |",
                "|---|---|---|---|---|---|"]
        for p in PATHS:
            w = whole.get(p.key)
            if w is None:
                continue
            o, f = w.result["open"], w.result["first_frame"]
            out.append(
                f"| {p.label} | {o['connect_s'] * 1000:.0f} ms | {o['studies_s']:.2f} s | "
                f"{o['series_s']:.2f} s | {o['metadata_s']:.2f} s ({o['metadata_bytes'] / 1024:.0f}"
                f" KiB, {o['metadata_encoding']}) | {o['frame_s']:.2f} s ({f['bytes'] / 1024:.0f}"
                f" KiB, {SYNTAX_NAMES.get(f['syntax'], f['syntax'])}, {f['ttfb_s'] * 1000:.0f} + "
                f"{f['transfer_s'] * 1000:.0f} ms) |")
        c = link_stats.get(profile.name, {})
        if c.get("down_frames"):
            def share(key: str, of: str, c: dict[str, int] = c) -> str:
                return f"{100 * c[key] / max(c[of], 1):.1f} %"

            out += ["", f"Link over the whole profile: towards the client {c['down_frames']} "
                    f"frames, {share('down_lost', 'down_frames')} lost (emulated), "
                    f"{share('down_fifo_full', 'down_frames')} dropped by the full bottleneck "
                    f"FIFO; towards the server {c['up_frames']} frames, "
                    f"{share('up_lost', 'up_frames')} lost, {share('up_fifo_full', 'up_frames')}"
                    " FIFO drops. Emulation error: the relay handed on "
                    f"{share('down_late_2ms', 'down_sent')} / {share('up_late_2ms', 'up_sent')} "
                    f"of the frames more than 2 ms late (down / up), "
                    f"{share('down_late_10ms', 'down_sent')} / {share('up_late_10ms', 'up_sent')}"
                    f" more than 10 ms, at worst {c['down_late_ms_max']} / "
                    f"{c['up_late_ms_max']} ms (a busy machine delays the relay)."]
        out += ["", "Retransmitted segments (server side) and server CPU per run: " + "; ".join(
            f"{r.path.label} {r.mode}: {r.retransmits}, {r.server_cpu_s:.1f} s" for r in mine)]
        if profile.name == "commune" and TODAY in whole and "hoichan-browser" in whole:
            out += ["", *goals(whole, jumps, firsts, uncompressed)]
    return out


def goals(whole: dict[str, Run], jumps: dict[str, Run], firsts: dict[str, float],
          uncompressed: int) -> list[str]:
    new = whole["hoichan-browser"].result
    j = jumps.get("hoichan-browser")
    p95 = jump_stats(j.result)[1] if j else float("nan")
    decode = merged_decode(whole["hoichan-browser"], j)
    lossless = all(d.get("lossless") == d.get("checked") for d in decode.values())
    share = new["payload_bytes"] / uncompressed
    t = new["whole_s"]
    today, anyts = whole[TODAY].result["whole_s"], whole[ORTHANC_ANY].result["whole_s"]

    def mark(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    return [
        "Issue 13 goals, commune profile, Hoichan with the browser's Accept:",
        f"- controller's slice at a follower ≤ 1.0 s p95 after a jump: {p95:.2f} s "
        f"{mark(p95 <= 1.0)}",
        f"- first image ≤ 1.5 s after opening: {firsts['hoichan-browser']:.2f} s "
        f"{mark(firsts['hoichan-browser'] <= 1.5)}",
        f"- CT series bytes ≤ 0.45x uncompressed, lossless: {share:.3f}x, "
        f"{'lossless' if lossless else 'NOT lossless'} on every frame checked "
        f"{mark(share <= 0.45 and lossless)}",
        f"- whole series ≤ 0.5x today's time: {t:.1f} s vs {today:.1f} s = {t / today:.2f}x "
        f"{mark(t <= 0.5 * today)}; no slower than Orthanc transfer-syntax=* ({anyts:.1f} s): "
        f"{t / anyts:.2f}x {mark(t <= anyts)}",
    ]


async def orchestrate_main(args: argparse.Namespace) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await asyncio.wait_for(orchestrate(args), args.timeout)
    except TimeoutError:
        print(f"stopped: --timeout {args.timeout:.0f} s reached", file=sys.stderr)
        return 1
    except asyncio.CancelledError:  # our SIGTERM handler: orchestrate's finally has run
        print("stopped by SIGTERM", file=sys.stderr)
        return 143


# ====================================================================== the parent
# Runs where it was started (root namespace): builds and removes the link.


def report_from(path: str, markdown: str | None) -> int:
    saved = json.loads(Path(path).read_text())
    args = argparse.Namespace(**saved["args"])
    by_key = {p.key: p for p in PATHS}
    runs = [Run(**{**r, "path": by_key[r["path"]]}) for r in saved["runs"]]
    profiles = [PROFILES[n] for n in dict.fromkeys(r.profile for r in runs)]
    text = "\n".join(make_report(args, runs, profiles, saved["versions"], saved["noise"],
                                 saved["warmups"], saved["load_start"], saved["load_end"],
                                 saved["elapsed_s"], saved["link_stats"], saved["measured"],
                                 saved["git"]))
    print(text)
    if markdown:
        Path(markdown).write_text(text + "\n")
    return 0


def parent_main(args: argparse.Namespace, argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("needs root (network namespaces, tc)", file=sys.stderr)
        return 2
    for tool in ("ip", "tc", "setpriv", "storescu", imaging.ORTHANC, imaging.DICOMWEB_PLUGIN,
                 str(imaging.HOICHAN)):
        if not (shutil.which(tool) or os.path.exists(tool)):
            print(f"missing {tool}: apt-get install -y iproute2 util-linux orthanc "
                  "orthanc-dicomweb dcmtk; make run (for .venv)", file=sys.stderr)
            return 2
    stale = remove_stale()
    if stale:
        print(f"removed namespaces of an earlier killed run: {', '.join(stale)}",
              file=sys.stderr)
    link = ShapedLink()
    child: subprocess.Popen[bytes] | None = None

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    # Ctrl-C even when started in the background of a script (SIGINT inherited as ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    rc = 1
    try:
        link.create()
        child = subprocess.Popen(imaging.orphan_proof(
            ["ip", "netns", "exec", link.server_ns, sys.executable, __file__, "--role",
             "orchestrate", "--link-pid", str(os.getpid()), *argv]))
        rc = child.wait(args.timeout + 120)
    except subprocess.TimeoutExpired:
        print("the orchestrator overran --timeout; stopping it", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
        link.destroy()
        left = [n for n in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                          text=True, check=False).stdout.split()
                if n.startswith(f"hcwl-{os.getpid()}-")]
        print("namespaces, veths and relay removed" if not left else f"left behind: {left}",
              file=sys.stderr)
    return rc


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=("commune", "district", "both"), default="both")
    parser.add_argument("--slices", type=int, default=None, help="default 500 (--quick: 60)")
    parser.add_argument("--jumps", type=int, default=None, help="default 20 (--quick: 5)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 60 slices, 5 jumps")
    parser.add_argument("--prefetch", type=int, default=PREFETCH_CONCURRENCY,
                        help="prefetch requests in flight (default: the viewer's)")
    parser.add_argument("--dwell", type=lambda s: [float(x) for x in s.split(",")],
                        default=[1.0, 2.0], help="seconds between a slice shown and the "
                        "next jump, uniform in MIN,MAX")
    parser.add_argument("--queue-ms", type=float, default=100,
                        help="bottleneck FIFO, in ms of data at the link's rate")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=None,
                        help="hard bound in seconds for the whole run (default 5400, "
                        "--quick 900)")
    parser.add_argument("--run-timeout", type=float, default=1200,
                        help="bound per client run")
    parser.add_argument("--markdown", default=None, help="also write the report here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--save", default="/tmp/weak_link_results.json",
                        help="raw results (JSON) written here at the end")
    parser.add_argument("--report-from", default=None,
                        help="print the report of a saved run (--save) and exit")
    parser.add_argument("--role", choices=("parent", "orchestrate", "client"),
                        default="parent", help=argparse.SUPPRESS)
    parser.add_argument("--link-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--config", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    q = args.quick
    args.slices = args.slices or (60 if q else 500)
    args.jumps = args.jumps if args.jumps is not None else (5 if q else 20)
    args.timeout = args.timeout or (900 if q else 5400)
    return args


def main() -> int:
    argv = sys.argv[1:]
    args = parse(argv)
    if args.report_from:
        return report_from(args.report_from, args.markdown)
    if args.role == "client":
        return client_main(args.config)
    if args.role == "orchestrate":
        try:
            return asyncio.run(orchestrate_main(args))
        except KeyboardInterrupt:
            return 130
    return parent_main(args, argv)


if __name__ == "__main__":
    sys.exit(main())
