"""``openpars serve`` runs the real app over the database named by --db."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_serve_answers_health_and_openapi(db_url: str) -> None:
    port = free_port()
    command = [str(Path(sys.executable).parent / "openpars"), "serve", "--port", str(port),
               "--db", db_url]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        health = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                health = httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx2.TransportError:
                time.sleep(0.3)
        assert health is not None, "openpars serve did not come up"
        assert health.json()["status"] == "ok"
        spec = httpx2.get(f"http://127.0.0.1:{port}/openapi.json", timeout=60).json()
        assert "/api/v1/arrests" in spec["paths"]
        me = httpx2.get(f"http://127.0.0.1:{port}/api/v1/users/me", timeout=60)
        assert me.status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)
