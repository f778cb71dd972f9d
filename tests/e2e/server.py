"""A real `facewarden serve` subprocess for the e2e tests: its own home, its admin key, its log, its RSS."""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

FACEWARDEN = [sys.executable, "-m", "facewarden.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`init` then `serve` in `home`; the combined output is collected in `lines` as it comes."""

    def __init__(self, home: Path, **env: str) -> None:
        self.home = home
        self.env = {**os.environ, "FACEWARDEN_HOME": str(home), "FACEWARDEN_WORKERS": "2",
                    "FACEWARDEN_LIVENESS_REQUIRED_PURPOSES": "[]", "FACEWARDEN_RATE_LIMIT_PER_MINUTE": "100000",
                    "FACEWARDEN_PERSON_SEARCH_LIMIT_PER_DAY": "100000", "FACEWARDEN_PERSON_VERIFY_LIMIT_PER_HOUR": "100000",
                    **env}
        init = subprocess.run([*FACEWARDEN, "init"], env=self.env, capture_output=True, text=True, timeout=300)
        assert init.returncode == 0, init.stderr
        self.key = init.stdout.strip().splitlines()[-1]
        self.port = free_port()
        self.base = f"https://127.0.0.1:{self.port}"
        self.ctx = ssl.create_default_context(cafile=str(home / "tls" / "cert.pem"))
        self.lines: list[str] = []
        self.proc = subprocess.Popen([*FACEWARDEN, "serve", "--port", str(self.port)], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/v1/health", verify=self.ctx, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
            if self.proc.poll() is not None:
                break
        self.stop()
        raise AssertionError("the server did not come up:\n" + "\n".join(self.lines[-40:]))

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, verify=self.ctx, headers={"Authorization": f"Bearer {self.key}"},
                            timeout=60, **kwargs)  # type: ignore[arg-type]

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def fd_kinds(self) -> dict[str, int]:
        """The server's open descriptors by kind: `socket`, `pipe`, `anon_inode`, or the file's path."""
        kinds: dict[str, int] = {}
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}")
            except OSError:
                continue
            kind = target.split(":")[0] if target.startswith(("socket:", "pipe:", "anon_inode:")) else target
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return "\n".join(self.lines)


class Stalled:
    """Slow and stalled connections from another loopback address (so the per-address upload cap leaves the
    well-behaved client on 127.0.0.1 its own slots): TCP that never starts TLS, request heads that trickle in and
    never end, multipart bodies that stop after their first bytes."""

    SOURCE = "127.0.0.2"

    def __init__(self, server: Server) -> None:
        self.server = server
        self.socks: list[tuple[str, socket.socket]] = []
        self._stop = threading.Event()
        self._trickler = threading.Thread(target=self._trickle, daemon=True)

    def _connect(self, tls: bool = True) -> socket.socket:
        raw = socket.create_connection(("127.0.0.1", self.server.port), timeout=30, source_address=(self.SOURCE, 0))
        return self.server.ctx.wrap_socket(raw, server_hostname="127.0.0.1") if tls else raw

    def open(self, no_tls: int, partial_heads: int, partial_bodies: int) -> None:
        for _ in range(no_tls):
            self.socks.append(("no_tls", self._connect(tls=False)))
        for i in range(partial_heads):
            s = self._connect()
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: fw\r\nX-Slow-%d: " % i)
            self.socks.append(("partial_head", s))
        for _ in range(partial_bodies):
            s = self._connect()
            s.sendall(b"POST /v1/identify HTTP/1.1\r\nHost: fw\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                      b"Content-Length: 2000000\r\nAuthorization: Bearer " + self.server.key.encode() +
                      b"\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.jpg\"\r\n\r\n\xff\xd8")
            self.socks.append(("partial_body", s))
        if not self._trickler.is_alive():
            self._trickler.start()

    def _trickle(self) -> None:
        """A header byte a second on every unfinished head: slowloris, never completing."""
        while not self._stop.wait(1.0):
            for kind, s in self.socks:
                if kind == "partial_head":
                    with contextlib.suppress(OSError):
                        s.send(b"x")

    def wait_closed(self, within_s: float) -> dict[str, int]:
        """How many of each kind the server has closed (EOF or reset) within `within_s` from now."""
        deadline = time.monotonic() + within_s
        self._stop.set()  # SSL sockets are not for two threads at once
        if self._trickler.is_alive():
            self._trickler.join()
        closed: dict[str, int] = {}
        for kind, s in self.socks:
            closed.setdefault(kind, 0)
            while True:  # at least one look at each, however late
                left = deadline - time.monotonic()
                s.settimeout(max(left, 0.05))
                try:
                    if not s.recv(65536):
                        closed[kind] += 1
                        break
                except TimeoutError:
                    break
                except OSError:  # reset, or a TLS record cut short: closed all the same
                    closed[kind] += 1
                    break
                if left <= 0:  # data (an error answer) came, but no close yet, and time is up
                    break
        return closed

    def close(self) -> None:
        self._stop.set()
        for _, s in self.socks:
            s.close()
        self.socks.clear()
