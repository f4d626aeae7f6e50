"""The server as it ships: gunicorn with `gunicorn.conf.py` (gthread workers), several worker processes
on one database. Whatever a request leaves behind (a created resource, a page cursor) must be usable
through any worker: nothing lives only in one process's memory."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = str(Path(sys.executable).parent / "gunicorn")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(method: str, url: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Accept": "application/fhir+json", **({"Content-Type": "application/fhir+json"} if data else {}),
        "Connection": "close"})  # a new connection each time: the next request may reach another worker
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    db = tmp_path_factory.mktemp("served") / "fhir.sqlite3"
    port = _free_port()
    env = {**os.environ, "FHIR_DATABASE_URL": f"sqlite:///{db}", "FHIR_AUTH_ENABLED": "false",
           "WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2"}
    proc = subprocess.Popen([GUNICORN, "--config", str(ROOT / "gunicorn.conf.py"), "--bind", f"127.0.0.1:{port}",
                             "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}/fhir"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if _call("GET", f"{base}/metadata")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"gunicorn did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.3)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _workers(base: str) -> set[int]:
    """The worker processes of the gunicorn serving `base` (children of its master)."""
    port = base.split(":")[2].split("/")[0]
    out = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True).stdout.split()
    return {int(pid) for pid in out}


def test_the_shipped_configuration_runs_several_workers(served: str) -> None:
    assert len(_workers(served)) >= 3  # the master and two workers


def test_a_created_resource_is_read_back_through_every_worker(served: str) -> None:
    status, created = _call("POST", f"{served}/Organization", {"resourceType": "Organization", "name": "TYT xã A"})
    assert status == 201
    for _ in range(12):
        status, read = _call("GET", f"{served}/Organization/{created['id']}")
        assert status == 200 and read["name"] == "TYT xã A"


def test_a_page_cursor_made_by_one_worker_is_followed_by_any(served: str) -> None:
    for n in range(7):
        assert _call("POST", f"{served}/Location", {"resourceType": "Location", "name": f"Phòng khám {n}"})[0] == 201
    seen: list[str] = []
    url: str | None = f"{served}/Location?_count=2&_sort=name"
    while url:
        status, page = _call("GET", url)
        assert status == 200
        seen += [e["resource"]["name"] for e in page.get("entry", [])]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert seen == [f"Phòng khám {n}" for n in range(7)]
