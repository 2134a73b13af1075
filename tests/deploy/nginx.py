"""Debian's nginx running deploy/nginx/hoichan.conf as shipped, but for what a test machine
needs changed: the ports (127.0.0.1, free), the certificate (self-signed) and the upstream
(one app node). Each change is checked to apply exactly once, so a reshaped config breaks
this helper loudly instead of testing something else."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.app_process import accepts, stop_process
from tests.deploy.coturn import free_udp_tcp_port
from tests.waiting import poll_blocking

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def self_signed(folder: Path) -> None:
    """fullchain.pem and privkey.pem for 127.0.0.1, as /etc/ssl/hoichan/ holds them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fullchain.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected {old!r} once in the shipped nginx config"
    return text.replace(old, new)


@dataclass
class Nginx:
    process: subprocess.Popen[bytes]
    https_port: int
    http_port: int
    error_log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    def stop(self) -> None:
        stop_process(self.process)


def render(folder: Path, app_ports: tuple[int, ...], https_port: int, http_port: int) -> Path:
    """The shipped site and upstreams (one or two app nodes), adapted, inside a minimal
    nginx.conf."""
    upstreams = (DEPLOY / "nginx" / "upstreams.conf").read_text()
    second = "    server 127.0.0.1:8082 max_fails=3 fail_timeout=10s;\n"
    for upstream in ("hoichan_api", "hoichan_socketio"):
        block = upstreams.split(f"upstream {upstream} {{", 1)[1].split("}", 1)[0]
        nodes = _replace(block, "server 127.0.0.1:8081 ", f"server 127.0.0.1:{app_ports[0]} ")
        nodes = _replace(nodes, second, second.replace("8082", str(app_ports[1]))
                         if len(app_ports) > 1 else "")
        upstreams = upstreams.replace(block, nodes)
    (folder / "upstreams.conf").write_text(upstreams)
    site = (DEPLOY / "nginx" / "hoichan.conf").read_text()
    for old, new in [
        ("include /etc/nginx/hoichan-upstreams.conf;", f"include {folder / 'upstreams.conf'};"),
        ("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"),
        ("    listen [::]:80;\n", ""),
        ("    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{https_port} ssl http2;\n"),
        ("    listen [::]:443 ssl http2;\n", ""),
        ("/etc/ssl/hoichan/fullchain.pem", str(folder / "fullchain.pem")),
        ("/etc/ssl/hoichan/privkey.pem", str(folder / "privkey.pem")),
    ]:
        site = _replace(site, old, new)
    (folder / "hoichan.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    # As root, workers would run as nobody, who cannot enter pytest's private tmp folders.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = folder / "nginx.conf"
    main.write_text(f"""{user}daemon off;
pid {folder / 'nginx.pid'};
worker_processes 1;
events {{}}
http {{
    access_log off;
{temp}
    include {folder / 'hoichan.conf'};
}}
""")
    return main


def start_nginx(folder: Path, *app_ports: int) -> Nginx:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    folder.mkdir(parents=True, exist_ok=True)
    self_signed(folder)
    https_port, http_port = free_udp_tcp_port(), free_udp_tcp_port()
    main = render(folder, app_ports, https_port, http_port)
    error_log = folder / "error.log"
    args = [binary, "-c", str(main), "-e", str(error_log)]
    checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=10,
                             check=False)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Nginx(process, https_port, http_port, error_log)
    if poll_blocking(lambda: process.poll() is not None or accepts(https_port), 10) \
            and process.poll() is None:
        return server
    server.stop()
    raise RuntimeError(f"nginx did not start: {error_log.read_text()[-2000:]}")
