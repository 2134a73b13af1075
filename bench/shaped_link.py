"""A shaped network link between two private network namespaces, for benchmarks (root only).

Three namespaces, ``hcwl-PID-srv``, ``hcwl-PID-mid`` and ``hcwl-PID-cli``, and two veth
pairs: server end ``hcwlPIDs`` (198.18.0.1) <-> ``hcwlPIDa`` | ``hcwlPIDb`` <-> ``hcwlPIDc``
client end (198.18.0.2). The addresses are in the benchmarking range 198.18.0.0/15 and exist
only in those namespaces; the middle one has no address at all and routes nothing: no traffic
can leave the machine.

This kernel has no netem (``CONFIG_NET_SCH_NETEM`` is not set; tbf and htb are there), so the
link is emulated in two stages, the same in each direction:

1. a relay process in the middle namespace (``python shaped_link.py relay``) takes every
   Ethernet frame from one side with a packet socket, drops it with the loss probability,
   holds it for the one-way delay (RTT / 2) and hands it to the other side;
2. tbf on the middle veth end that leads on (egress of ``a`` towards the server, of ``b``
   towards the client) gives the rate and the bottleneck FIFO (``queue_ms`` of data at that
   rate; a full FIFO drops at its tail).

So a packet is delayed first and then waits its turn at the bottleneck: propagation delay
and queueing add up, as on a real link. The relay runs at a raised priority and sends each
frame within about a millisecond of its due time (timer granularity), on a busy machine
perhaps later. Segmentation offloads are off on the end points (``gso_max_segs 1``, so loss
and rate see real 1500-byte packets, not 64 KB super-packets) and so is their transmit
checksum offload (a relayed frame must carry a finished checksum).

``ShapedLink.create()`` / ``shape(profile)`` / ``destroy()``; ``destroy`` is idempotent and
registered with atexit; ``remove_stale()`` deletes the namespaces of earlier runs whose
process is gone (a run killed with SIGKILL). Used by ``bench/weak_link.py``.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

SERVER_ADDRESS = "198.18.0.1"
CLIENT_ADDRESS = "198.18.0.2"
PREFIX_LEN = 30
MTU_FRAME = 1514


@dataclass(frozen=True)
class Profile:
    name: str
    rate_mbit: float
    rtt_ms: float
    loss_pct: float  # per direction

    def describe(self, queue_ms: float) -> str:
        loss = f", {self.loss_pct:g} % loss each way" if self.loss_pct else ", no loss"
        return (f"{self.name}: {self.rate_mbit:g} Mbit/s each way, {self.rtt_ms:g} ms RTT "
                f"({self.rtt_ms / 2:g} ms each way){loss}, bottleneck FIFO {queue_ms:g} ms "
                f"({self.queue_bytes(queue_ms) / 1000:.0f} kB) each way")

    def queue_bytes(self, queue_ms: float) -> int:
        return max(4 * MTU_FRAME, int(self.rate_mbit * 1e6 / 8 * queue_ms / 1000))


PROFILES = {
    "commune": Profile("commune", 8, 100, 0.5),
    "district": Profile("district", 30, 40, 0.0),
}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Namespaces left by runs whose process has died (SIGKILL), deleted; their names."""
    removed = []
    for line in run("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.fullmatch(r"hcwl-(\d+)-(srv|mid|cli)", name)
        if m and not _alive(int(m.group(1))):
            run("ip", "netns", "del", name, check=False)
            removed.append(name)
    return removed


# ethtool through its ioctl (the ethtool program is not installed everywhere)
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def _tx_checksum_off(ifname: str) -> None:
    """``ethtool -K IFNAME tx off`` for the calling process's network namespace."""
    value = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)


def _orphan_proof(command: list[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *command] if setpriv else command


class ShapedLink:
    def __init__(self, owner_pid: int | None = None) -> None:
        self.pid = owner_pid or os.getpid()
        p = self.pid
        self.server_ns, self.mid_ns, self.client_ns = (f"hcwl-{p}-srv", f"hcwl-{p}-mid",
                                                       f"hcwl-{p}-cli")
        self.server_dev, self.mid_a, self.mid_b, self.client_dev = (
            f"hcwl{p}s", f"hcwl{p}a", f"hcwl{p}b", f"hcwl{p}c")
        self.created = False
        self.relay: subprocess.Popen[bytes] | None = None
        self.relay_stats = Path(f"/tmp/hcwl-{p}-relay.json")

    # -------------------------------------------------------------- set-up and removal

    def create(self) -> None:
        atexit.register(self.destroy)
        self.created = True
        for ns in (self.server_ns, self.mid_ns, self.client_ns):
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        for end, ns_end, mid in ((self.server_dev, self.server_ns, self.mid_a),
                                 (self.client_dev, self.client_ns, self.mid_b)):
            run("ip", "-n", ns_end, "link", "add", end, "type", "veth", "peer", "name", mid,
                "netns", self.mid_ns)
        for ns, dev, address in ((self.server_ns, self.server_dev, SERVER_ADDRESS),
                                 (self.client_ns, self.client_dev, CLIENT_ADDRESS)):
            run("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1", "gso_max_size",
                "1500")
            run("ip", "netns", "exec", ns, sys.executable, __file__, "txcsum-off", dev)
            run("ip", "-n", ns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        for dev in (self.mid_a, self.mid_b):
            run("ip", "-n", self.mid_ns, "link", "set", dev, "promisc", "on", "up")
        # Permanent neighbour entries: no ARP exchange (one more round trip) on a first
        # connection, nor later when an entry would go stale.
        macs = {ns: json.loads(run("ip", "-n", ns, "-j", "link", "show", "dev", dev).stdout)[0][
            "address"] for ns, dev in ((self.server_ns, self.server_dev),
                                       (self.client_ns, self.client_dev))}
        for ns, dev, peer, peer_ns in ((self.server_ns, self.server_dev, CLIENT_ADDRESS,
                                        self.client_ns),
                                       (self.client_ns, self.client_dev, SERVER_ADDRESS,
                                        self.server_ns)):
            run("ip", "-n", ns, "neigh", "replace", peer, "lladdr", macs[peer_ns], "dev", dev,
                "nud", "permanent")
        for key in ("net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"):
            run("ip", "netns", "exec", self.mid_ns, "sysctl", "-q", "-w", f"{key}=1",
                check=False)

    def destroy(self) -> None:
        if not self.created:
            return
        self.created = False
        self.unshape()
        for ns in (self.client_ns, self.mid_ns, self.server_ns):
            run("ip", "netns", "del", ns, check=False)  # removes the veth pairs with them
        self.relay_stats.unlink(missing_ok=True)

    # -------------------------------------------------------------- shaping

    def shape(self, profile: Profile, queue_ms: float, seed: int = 1) -> None:
        self.unshape()
        queue = profile.queue_bytes(queue_ms)
        burst = max(2 * MTU_FRAME, int(profile.rate_mbit * 1e6 / 8 / 1000))  # ~1 ms of data
        for dev in (self.mid_a, self.mid_b):
            run("tc", "-n", self.mid_ns, "qdisc", "add", "dev", dev, "root", "handle", "1:",
                "tbf", "rate", f"{profile.rate_mbit:g}mbit", "burst", str(burst),
                "limit", str(queue))
        self.relay_stats.unlink(missing_ok=True)
        command = ["ip", "netns", "exec", self.mid_ns, "nice", "-n", "-10", sys.executable,
                   __file__, "relay", self.mid_a, self.mid_b, str(profile.rtt_ms / 2000),
                   str(profile.loss_pct / 100), str(seed), str(self.relay_stats)]
        self.relay = subprocess.Popen(_orphan_proof(command), stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while not self.relay_stats.exists():
            if self.relay.poll() is not None:
                raise RuntimeError(f"relay exited: {self.relay.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("relay did not start")
            time.sleep(0.05)

    def unshape(self) -> None:
        if self.relay is not None:
            if self.relay.poll() is None:
                self.relay.terminate()
                try:
                    self.relay.wait(5)
                except subprocess.TimeoutExpired:
                    self.relay.kill()
                    self.relay.wait(5)
            self.relay = None
        for dev in (self.mid_a, self.mid_b):
            run("tc", "-n", self.mid_ns, "qdisc", "del", "dev", dev, "root", check=False)

    # -------------------------------------------------------------- counters

    def relay_counters(self) -> dict[str, int]:
        """Frames the relay got, dropped as loss, passed on, and those the bottleneck
        FIFO refused (tail drops), per direction ``down`` (to the client) and ``up``; and
        how many it handed on more than 2 or 10 ms after their due time, and the latest."""
        try:
            return dict(json.loads(self.relay_stats.read_text()))
        except (OSError, ValueError):
            return {}

    def tbf_drops(self) -> dict[str, int]:
        out = {}
        for direction, dev in (("up", self.mid_a), ("down", self.mid_b)):
            done = run("tc", "-n", self.mid_ns, "-s", "-j", "qdisc", "show", "dev", dev,
                       check=False)
            try:
                out[direction] = int(json.loads(done.stdout)[0].get("drops", 0))
            except (ValueError, IndexError, KeyError):
                out[direction] = -1
        return out

    def client_bytes(self) -> tuple[int, int]:
        """(received, sent) bytes of the client's veth end so far, as the wire carried
        them (Ethernet frames with their IP and TCP headers, retransmissions included)."""
        done = run("ip", "-n", self.client_ns, "-s", "-j", "link", "show", "dev",
                   self.client_dev)
        stats = json.loads(done.stdout)[0]["stats64"]
        return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


# ------------------------------------------------------------------ the relay process

PACKET_OUTGOING = 4
SO_RCVBUFFORCE, SO_SNDBUFFORCE = 33, 32


def relay(dev_a: str, dev_b: str, delay_s: float, loss: float, seed: int, stats: str) -> None:
    """Frames from ``dev_a`` out of ``dev_b`` and back, each held ``delay_s`` and dropped
    with probability ``loss``; runs until SIGTERM. Writes counters to ``stats`` every
    second (and at the end)."""
    rng = random.Random(seed)
    socks = {}
    for dev in (dev_a, dev_b):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
        s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        s.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 16 << 20)
        s.bind((dev, 0))
        s.setblocking(False)
        socks[dev] = s
    other = {dev_a: dev_b, dev_b: dev_a}
    direction = {dev_a: "down", dev_b: "up"}  # frames received on a go down to the client
    pending: dict[str, deque[tuple[float, bytes]]] = {dev_a: deque(), dev_b: deque()}
    counters = {f"{d}_{k}": 0 for d in ("down", "up")
                for k in ("frames", "lost", "sent", "fifo_full", "late_2ms", "late_10ms",
                          "late_ms_max")}
    poller = select.epoll()
    by_fd = {s.fileno(): dev for dev, s in socks.items()}
    for fd in by_fd:
        poller.register(fd, select.EPOLLIN)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    next_dump = 0.0
    while not stop:
        now = time.monotonic()
        if now >= next_dump:
            Path(stats + ".tmp").write_text(json.dumps(counters))
            os.replace(stats + ".tmp", stats)
            next_dump = now + 1.0
        due = min((q[0][0] for q in pending.values() if q), default=now + 0.2)
        timeout = min(max(due - now, 0.0), 0.2, next_dump - now)
        for fd, _ in poller.poll(timeout):
            dev = by_fd[fd]
            s, d = socks[dev], direction[dev]
            arrived = time.monotonic()
            while True:
                try:
                    frame, address = s.recvfrom(65536)
                except BlockingIOError:
                    break
                if address[2] == PACKET_OUTGOING:
                    continue
                counters[f"{d}_frames"] += 1
                if loss and rng.random() < loss:
                    counters[f"{d}_lost"] += 1
                    continue
                pending[other[dev]].append((arrived + delay_s, frame))
        now = time.monotonic()
        for dev, queue in pending.items():
            d = direction[other[dev]]
            out = socks[dev]
            while queue and queue[0][0] <= now:
                when, frame = queue.popleft()
                late = (now - when) * 1000
                if late > 2:
                    counters[f"{d}_late_2ms"] += 1
                    if late > 10:
                        counters[f"{d}_late_10ms"] += 1
                    if late > counters[f"{d}_late_ms_max"]:
                        counters[f"{d}_late_ms_max"] = int(late)
                try:
                    out.send(frame)
                    counters[f"{d}_sent"] += 1
                except OSError:  # ENOBUFS: the bottleneck FIFO (tbf) is full
                    counters[f"{d}_fifo_full"] += 1
    Path(stats + ".tmp").write_text(json.dumps(counters))
    os.replace(stats + ".tmp", stats)


if __name__ == "__main__":
    if sys.argv[1] == "relay":
        relay(sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]),
              int(sys.argv[6]), sys.argv[7])
    elif sys.argv[1] == "txcsum-off":
        _tx_checksum_off(sys.argv[2])
    else:
        sys.exit(f"usage: {sys.argv[0]} relay DEV_A DEV_B DELAY_S LOSS SEED STATS | "
                 "txcsum-off DEV")
