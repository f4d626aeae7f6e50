# Two commands do all the set-up on a fresh machine:  `make run`  and  `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8080
WORKERS ?=
export FHIR_DATABASE_URL ?= sqlite:///var/fhir.sqlite3

.PHONY: install run serve demo test lint typecheck bench clean package

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

# Install, create the schema, load the demo data, register demo OAuth clients, serve.
run: install demo serve

demo: install
	$(PY) -m fhir_server init-db
	$(PY) -m fhir_server load-demo
	@if [ -f auth/__main__.py ]; then $(PY) -m auth demo-clients; fi

serve: install
	WEB_CONCURRENCY=$(WORKERS) $(VENV)/bin/gunicorn --config gunicorn.conf.py --bind $(HOST):$(PORT) --access-logfile - wsgi:app

# The whole suite on SQLite and on PostgreSQL (when one answers on 127.0.0.1:5432).
test: install
	bash scripts/test.sh

lint: install
	$(VENV)/bin/ruff check $(wildcard fhir_server auth profiles terminology tests scripts bench wsgi.py gunicorn.conf.py)

typecheck: install
	$(VENV)/bin/mypy

# The NPM-style FHIR package of our profiles and terminology (dist/vn.telehealth.fhir-<version>.tgz).
package: install
	$(PY) -m profiles.package

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
