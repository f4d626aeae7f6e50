"""Load NDJSON resources into a sekmet-fhir store through its own write path (run with sekmet's python).

Usage: bench/.venv-sekmet/bin/python bench/sekmet_load.py DB_PATH < resources.ndjson
Each resource is written with `Store.create(keep_id=True)` (its indexer included), 2,000 per
transaction; prints the seconds taken.
"""

from __future__ import annotations

import json
import sys
import time

from sekmet.fhir.store import Store  # type: ignore[import-not-found]


def main() -> None:
    store = Store(sys.argv[1])
    t0 = time.perf_counter()
    batch: list[dict[str, object]] = []

    def flush() -> None:
        with store.transaction():
            for res in batch:
                store.create(res, keep_id=True)
        batch.clear()

    for line in sys.stdin:
        if line.strip():
            batch.append(json.loads(line))
            if len(batch) >= 2000:
                flush()
    if batch:
        flush()
    print(f"{time.perf_counter() - t0:.1f}")


if __name__ == "__main__":
    main()
