"""The floor: a minimal Flask app answering the same two requests from a dict (no FHIR work)."""

from __future__ import annotations

import json
import uuid

from flask import Flask, Response, request

app = Flask(__name__)
STORE: dict[str, bytes] = {}
# Each gunicorn worker has its own dict; a read of an id another worker created answers this
# template, so the floor never pays for a miss.
TEMPLATE = json.dumps({"resourceType": "Appointment", "id": "x", "status": "booked", "participant": []}).encode()


@app.post("/fhir/Appointment")
def create() -> Response:
    body = request.get_json(force=True)
    body["id"] = str(uuid.uuid4())
    data = json.dumps(body).encode()
    STORE[body["id"]] = data
    return Response(data, status=201, content_type="application/fhir+json")


@app.get("/fhir/Appointment/<rid>")
def read(rid: str) -> Response:
    return Response(STORE.get(rid, TEMPLATE), content_type="application/fhir+json")
