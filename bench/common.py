"""Shared bench helpers: start servers on loopback, wait for them, drive wrk, stop everything."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
# The configuration the server ships with (gunicorn.conf.py: gthread, 2 threads), 2 workers on every host
# so figures from different hosts compare.
GUNICORN = [str(VENV_BIN / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"), "--workers", "2",
            "--log-level", "warning"]

WRK_LUA = r"""
local ids = {%(ids)s}
local mode = "%(mode)s"
local body = [[%(body)s]]
local token = "%(token)s"
local i = 0
request = function()
  i = i + 1
  local h = {["Accept"] = "application/fhir+json"}
  if token ~= "" then h["Authorization"] = "Bearer " .. token end
  if mode == "read" then
    return wrk.format("GET", "/fhir/Appointment/" .. ids[(i %% #ids) + 1], h)
  end
  if mode == "search" then  -- a typical search: a patient's appointments, 10 a page, total counted
    return wrk.format("GET", "/fhir/Appointment?patient=Patient/pat-" .. ((i %% 20) + 1) .. "&_count=10", h)
  end
  h["Content-Type"] = "application/fhir+json"
  return wrk.format("POST", "/fhir/Appointment", h, body)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH p50=%%.3f p95=%%.3f req=%%d errors=%%d\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""

APPOINTMENT = {
    "resourceType": "Appointment", "status": "booked",
    "description": "Hội chẩn từ xa: bệnh nhân đau ngực, tuyến xã đề nghị tuyến trên hỗ trợ",
    "start": "2026-12-07T08:00:00+07:00", "end": "2026-12-07T08:30:00+07:00",
    "participant": [{"actor": {"reference": "Practitioner/prac-1", "display": "BS CK II Ngô Đức Tuấn"},
                     "status": "accepted"},
                    {"actor": {"reference": "Patient/pat-1", "display": "Nguyễn Văn Bình"}, "status": "accepted"}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return  # it answers
            time.sleep(0.3)
        except Exception:
            time.sleep(0.3)
    raise RuntimeError(f"server at {url} did not become ready")


@contextmanager
def server(cmd: list[str], ready_url: str, env: dict[str, str] | None = None, cwd: str | None = None
           ) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=cwd or str(ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(ready_url)
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def post_json(url: str, body: Any) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/fhir+json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk is needed (Debian package 'wrk')")
    return path


def run_wrk(base: str, mode: str, ids: list[str], duration: int, connections: int, token: str = ""
            ) -> dict[str, float]:
    """wrk against one server: mode read (by id, round robin over `ids`), search or create; `token` is
    sent as a bearer token. Non-2xx/3xx answers count as errors."""
    script = WRK_LUA % {"ids": ",".join(json.dumps(i) for i in ids), "mode": mode, "token": token,
                        "body": json.dumps(APPOINTMENT, ensure_ascii=False)}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    out = subprocess.run([ensure_wrk(), "-t2", f"-c{connections}", f"-d{duration}s", "-s", fh.name, base],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    os.unlink(fh.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    m = re.search(r"BENCH p50=([\d.]+) p95=([\d.]+) req=(\d+) errors=(\d+)", out)
    assert m, out
    return {"rps": rps, "p50_ms": float(m.group(1)), "p95_ms": float(m.group(2)), "requests": int(m.group(3)),
            "errors": int(m.group(4)) + (int(non2xx.group(1)) if non2xx else 0)}
