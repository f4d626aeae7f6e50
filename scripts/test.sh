#!/usr/bin/env bash
# The project's one test command (`make test`; .ci/run calls it too).
# Runs lint, type checks and the whole pytest suite; PostgreSQL joins when it answers.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"

if [ -z "${FHIR_TEST_POSTGRES_URL:-}" ]; then
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    export FHIR_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:5432/test"
  else
    echo "PostgreSQL is not answering on 127.0.0.1:5432: running on SQLite only" >&2
  fi
fi

# Headless Chromium for the browser tests (Debian's package; no browser download).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || echo "could not install chromium" >&2
  fi
fi

# Lint every top-level package that exists (auth/, profiles/ arrive with later issues).
LINT_PATHS=()
for p in fhir_server auth profiles terminology tests scripts bench wsgi.py gunicorn.conf.py; do [ -e "$p" ] && LINT_PATHS+=("$p"); done
ruff check "${LINT_PATHS[@]}"
mypy
mkdir -p tests/output
exec python -m pytest "$@"
