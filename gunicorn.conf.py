"""Gunicorn settings the server ships with (`make serve`, the benches; gunicorn also loads this file
by itself when started from the repository root).

Why gthread with 2 threads and one worker per core: the server is CPU-bound Python (a read is
~20-60 µs of our code, its SQLite lookup a few µs; a PostgreSQL round trip on the same host well
under a millisecond), so more threads per worker only queue on the GIL. Measured on the 2-core
bench host (bench/README.md, "Serving configuration"): 2 workers × 2 threads served reads and a
typical search faster than 2 × 8 on both backends (SQLite search +40 %, PostgreSQL search +45 %),
and within noise of 2 × 1 and 4 × 2; the second thread hides one request's database wait.
Override with the environment: WEB_CONCURRENCY (workers), GUNICORN_THREADS, or gunicorn's own flags.
"""

import os

workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
