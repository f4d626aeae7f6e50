"""`python -m fhir_server.reports rebuild`: refill the report index from the stored resources.

Needed once when the component is installed on a database that already holds Encounters
(new writes keep it current). Also refreshes the planner statistics (ANALYZE), which
SQLite's skip-scan of the report index relies on.
"""

from __future__ import annotations

import sys

from fhir_server.app import build_service
from fhir_server.reports.facts import rebuild
from fhir_server.settings import Settings


def main(argv: list[str]) -> int:
    if argv[:1] != ["rebuild"]:
        print(__doc__)
        return 2
    svc = build_service(Settings.from_env())
    n = rebuild(svc.repo.engine)
    with svc.repo.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
        conn.commit()
    print(f"report index: {n} telehealth encounters")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
