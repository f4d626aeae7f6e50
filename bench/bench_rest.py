"""REST core benchmark (issue #2): read-by-id and create over HTTP, ours vs a minimal Flask floor vs sekmet-fhir.

All three run on this machine with the same load tool (wrk, 2 threads) and the same
Appointment body; ours and the floor under the same gunicorn settings (bench/common.py:
the shipped gunicorn.conf.py, gthread × 2, with 2 workers). sekmet-fhir runs as it ships
(`sekmet serve`, one uvicorn process) from its own virtualenv (bench/.venv-sekmet), since its
dependencies differ from ours.
Authorization and auditing are off here (bench/bench_auth.py measures their cost).

Usage: .venv/bin/python bench/bench_rest.py [--duration 10] [--connections 16] [--postgres URL] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import APPOINTMENT, GUNICORN, ROOT, free_port, post_json, run_wrk, server

SEKMET_VENV = ROOT / "bench" / ".venv-sekmet"


def ensure_sekmet() -> Path:
    exe = SEKMET_VENV / "bin" / "sekmet"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SEKMET_VENV)], check=True)
        subprocess.run([str(SEKMET_VENV / "bin" / "pip"), "install", "-q", "sekmet-fhir==0.1.1"], check=True)
    return exe


def measure(name: str, base: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    ids = [post_json(f"{base}/fhir/Appointment", APPOINTMENT)["id"] for _ in range(200)]
    out = {}
    for mode in ("read", "create"):
        run_wrk(base, mode, ids, 2, args.connections)  # warm-up
        out[mode] = run_wrk(base, mode, ids, args.duration, args.connections)
        print(f"  {name:10s} {mode:6s} {out[mode]['rps']:9.1f} req/s  p50 {out[mode]['p50_ms']:7.2f} ms"
              f"  p95 {out[mode]['p95_ms']:7.2f} ms  errors {out[mode]['errors']}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", help="database URL for our server instead of a fresh SQLite file")
    parser.add_argument("--no-peer", action="store_true", help="skip sekmet-fhir")
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = args.postgres or f"sqlite:///{tmp}/bench.sqlite3"
        env = {"FHIR_DATABASE_URL": db, "FHIR_AUTH_ENABLED": "false", "FHIR_AUDIT_ENABLED": "false"}
        port = free_port()
        with server([*GUNICORN, "--bind", f"127.0.0.1:{port}", "wsgi:app"], f"http://127.0.0.1:{port}/fhir/metadata",
                    env):
            results["ours"] = measure("ours", f"http://127.0.0.1:{port}", args)
        port = free_port()
        with server([*GUNICORN, "--bind", f"127.0.0.1:{port}", "--chdir", str(ROOT / "bench"), "baseline_app:app"],
                    f"http://127.0.0.1:{port}/fhir/Appointment/x"):
            results["baseline"] = measure("baseline", f"http://127.0.0.1:{port}", args)
        if not args.no_peer:
            exe = ensure_sekmet()
            port = free_port()
            with server([str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
                        f"http://127.0.0.1:{port}/fhir/metadata", cwd=tmp):
                results["sekmet"] = measure("sekmet", f"http://127.0.0.1:{port}", args)
    print("\nratio of our req/s to:")
    for other in ("baseline", "sekmet"):
        if other in results:
            for mode in ("read", "create"):
                ratio = results["ours"][mode]["rps"] / results[other][mode]["rps"]
                print(f"  {other:8s} {mode:6s} {ratio:6.2f}×")
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "bench_rest.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
