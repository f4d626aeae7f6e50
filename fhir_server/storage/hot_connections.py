"""One DB-API connection per serving thread for the read hot path (read-by-id, boundary checks).

A pool checkout and return costs more Python than the indexed SELECT it wraps (~35 µs each on
this project's bench machine, and a read under authorization runs three statements). Each thread
of a worker (gunicorn gthread) therefore keeps one connection of its own, detached from the pool,
for single statements that need no transaction: SQLite connections here are in autocommit mode
(`isolation_level = None`), the PostgreSQL read engine is AUTOCOMMIT, so a kept connection never
holds a snapshot or a lock between statements. The set is bounded by the number of threads; a
forked child opens its own; `close_all` (engine disposal) closes every one, and a thread whose
connection was closed opens a new one on its next statement.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any


class HotConnections:
    def __init__(self, engine: Any, disconnect: tuple[type[BaseException], ...],
                 on_connect: Callable[[Any], None] | None = None) -> None:
        self.engine = engine
        self.on_connect = on_connect
        self.disconnect = disconnect
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[tuple[Any, int]] = []  # (connection, the process that opened it)
        self._inherited: list[Any] = []
        self._generation = 0

    def _connection(self) -> Any:
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is not None and local.pid == os.getpid() and local.generation == self._generation:
            return conn
        pid = os.getpid()
        if conn is not None and local.pid != pid:
            with self._lock:  # a forked child: the parent's connections are not ours to use or close (nor
                # to let the garbage collector close: that would end the parent's session on the shared socket)
                self._inherited += [c for c, p in self._open if p != pid]
                self._open = [(c, p) for c, p in self._open if p == pid]
        fairy = self.engine.raw_connection()
        conn = fairy.driver_connection
        fairy.detach()  # ours for the thread's life, not the pool's
        if self.on_connect is not None:
            self.on_connect(conn)
        local.conn, local.pid, local.generation = conn, pid, self._generation
        with self._lock:
            self._open.append((conn, pid))
        return conn

    def _drop(self, conn: Any) -> None:
        self._local.conn = None
        with self._lock:
            self._open = [(c, p) for c, p in self._open if c is not conn]
        with contextlib.suppress(Exception):  # already broken
            conn.close()

    def fetch(self, sql: str, params: tuple[Any, ...], all_rows: bool) -> Any:
        for attempt in (1, 2):
            conn = self._connection()
            try:
                cur = conn.cursor()
                cur.execute(sql, params)
                rows = cur.fetchall() if all_rows else cur.fetchone()
                cur.close()
                return rows
            except self.disconnect:
                self._drop(conn)  # a server restart or a dropped link: reconnect once
                if attempt == 2:
                    raise
        return None

    def close_all(self) -> None:
        with self._lock:
            conns, self._open = [c for c, p in self._open if p == os.getpid()], []
            self._generation += 1
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
