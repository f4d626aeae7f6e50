"""WSGI entry point: `gunicorn wsgi:app`."""

from fhir_server.app import create_app

app = create_app()
