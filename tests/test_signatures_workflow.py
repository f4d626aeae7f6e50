"""Issue #6 follow-ups through HTTP: the Provenance of a client-signed document, a transaction that carries
the signed document and its co-signers' Provenances, the immutability of a signed document's Composition,
`$document?persist=true` only by POST, the served OperationDefinitions, and the minutes profile."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fhir_server.signatures.fhir_signature import provenance_for, sign_document, signature_type
from tests.fhir_helpers import post, put
from tests.signature_minutes import PROFILE, composition
from tests.signature_pki import signer
from tests.test_signatures_api import app, sign, signature_parts, store_minutes, valid, verify  # noqa: F401

OD = "http://fhir.vntelehealth.org/r4/OperationDefinition/"
DEMO = Path(__file__).resolve().parent.parent / "fhir_server" / "demo_data" / "08-synthetic-visits-prescriptions.json"


def document(client: Any) -> dict[str, Any]:
    store_minutes(client)
    resp = client.get("/fhir/Composition/comp-minutes/$document")
    assert resp.status_code == 200
    return dict(resp.get_json())


def signature(pki: Any, doc: dict[str, Any], key: str, who: str, kind: str = "coauthor") -> dict[str, Any]:
    return sign_document(doc, signer(pki, key), {"reference": who}, [signature_type(kind)])  # type: ignore[list-item]


def count(client: Any, query: str) -> int:
    return int(client.get(f"/fhir/{query}{'&' if '?' in query else '?'}_total=accurate").get_json()["total"])


def provenances(client: Any, bundle_id: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in client.get(f"/fhir/Provenance?target=Bundle/{bundle_id}").get_json()
            .get("entry", [])]


def texts(resp: Any) -> str:
    return " ".join(i["details"]["text"] + " " + i.get("diagnostics", "") for i in resp.get_json()["issue"])


# -- 1. a client-signed document gets the Provenance of its signing -----------------------------
def test_client_signed_bundle_gets_the_provenance_of_its_signing(client: Any, signing_pki: Any) -> None:
    doc = document(client)
    doc["signature"] = signature(signing_pki, doc, "rsa", "Practitioner/prac-chair", "author")
    resp = post(client, "Bundle", doc)
    assert resp.status_code == 201, resp.get_json()
    bundle_id = resp.get_json()["id"]
    [prov] = provenances(client, bundle_id)
    assert prov["target"][0]["reference"] == f"Bundle/{bundle_id}"
    assert prov["agent"][0]["who"] == {"reference": "Practitioner/prac-chair"}
    assert prov["signature"] == [doc["signature"]]
    assert prov["entity"][0]["what"] == {"reference": "Composition/comp-minutes"}
    result = verify(client, bundle_id)
    assert valid(result) and len(signature_parts(result)) == 1  # the Provenance repeats Bundle.signature


def test_a_refused_signed_bundle_leaves_neither_bundle_nor_provenance(client: Any, signing_pki: Any) -> None:
    doc = document(client)
    before = count(client, "Bundle")
    doc["signature"] = signature(signing_pki, doc, "rsa", "Practitioner/prac-chair", "author")
    doc["timestamp"] = "2027-01-01T00:00:00+07:00"  # changed after signing
    assert post(client, "Bundle", doc).status_code == 422
    assert count(client, "Bundle") == before and count(client, "Provenance") == 0


# -- 2. a transaction with the signed document and its co-signers' Provenances ------------------
def signed_transaction(pki: Any, doc: dict[str, Any], forge: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["signature"] = signature(pki, doc, "rsa", "Practitioner/prac-chair", "author")
    urn = "urn:uuid:4b1f2f6e-1c55-4d0e-9b55-3f0d5a6c7e01"
    other = copy.deepcopy(doc)
    other["entry"][0]["resource"]["title"] = "Biên bản khác"
    entries: list[dict[str, Any]] = [{"fullUrl": urn, "resource": doc, "request": {"method": "POST", "url": "Bundle"}}]
    for i, (key, who) in enumerate((("ec", "Practitioner/prac-secretary"), ("ec2", "Practitioner/prac-member"))):
        signed = other if forge and i == 1 else doc
        prov = provenance_for(urn, doc, signature(pki, signed, key, who))
        entries.append({"fullUrl": f"urn:uuid:4b1f2f6e-1c55-4d0e-9b55-3f0d5a6c7e1{i}", "resource": prov,
                        "request": {"method": "POST", "url": "Provenance"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_transaction_with_signed_document_and_cosigner_provenances(client: Any, signing_pki: Any) -> None:
    resp = post(client, "", signed_transaction(signing_pki, document(client)))
    assert resp.status_code == 200, resp.get_json()
    locations = [e["response"]["location"] for e in resp.get_json()["entry"]]
    bundle_id = locations[0].split("/")[1]
    provs = provenances(client, bundle_id)
    assert len(provs) == 3  # two co-signers + the record of Bundle.signature
    assert all(p["target"][0]["reference"] == f"Bundle/{bundle_id}" for p in provs)
    result = verify(client, bundle_id)
    assert valid(result) and len(signature_parts(result)) == 3


def test_transaction_with_one_invalid_cosignature_writes_nothing(client: Any, signing_pki: Any) -> None:
    doc = document(client)
    before = count(client, "Bundle")
    resp = post(client, "", signed_transaction(signing_pki, doc, forge=True))
    assert resp.status_code == 422 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert resp.get_json()["issue"][0]["expression"][0].startswith("Bundle.entry[2]")
    assert count(client, "Bundle") == before and count(client, "Provenance") == 0
    assert count(client, "Composition?_id=comp-minutes") == 1
    comp = client.get("/fhir/Composition/comp-minutes").get_json()
    assert put(client, "Composition/comp-minutes", comp).status_code == 200  # not locked by the failed one


# -- 3. the Composition of a signed document is immutable ---------------------------------------
def assert_locked(client: Any, comp_id: str) -> None:
    comp = client.get(f"/fhir/Composition/{comp_id}").get_json()
    changed = {**comp, "title": "Sửa lại"}
    resp = put(client, f"Composition/{comp_id}", changed)
    assert resp.status_code == 409 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert "đã ký số" in texts(resp) and "replaces" in texts(resp)
    resp = put(client, f"Composition/{comp_id}", changed, **{"Accept-Language": "en"})
    assert resp.status_code == 409 and "signed document" in texts(resp)
    resp = client.patch(f"/fhir/Composition/{comp_id}", json=[{"op": "replace", "path": "/title", "value": "x"}],
                        headers={"Content-Type": "application/json-patch+json"})
    assert resp.status_code == 409 and "đã ký số" in texts(resp)
    resp = client.delete(f"/fhir/Composition/{comp_id}")
    assert resp.status_code == 405 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Composition/{comp_id}").get_json()["title"] == comp["title"]


def test_composition_of_a_server_signed_document_is_immutable(client: Any) -> None:
    bundle_id = store_minutes(client)
    assert sign(client, bundle_id, "rsa", final=True).status_code == 200
    assert_locked(client, "comp-minutes")


def test_a_cosignature_alone_locks_the_composition(client: Any) -> None:
    bundle_id = store_minutes(client)
    assert sign(client, bundle_id, "ec").status_code == 200
    assert_locked(client, "comp-minutes")


def test_composition_of_a_client_signed_document_is_immutable(client: Any, signing_pki: Any) -> None:
    doc = document(client)
    doc["signature"] = signature(signing_pki, doc, "ec", "Practitioner/prac-chair", "author")
    assert post(client, "Bundle", doc).status_code == 201
    assert_locked(client, "comp-minutes")


def test_locked_composition_in_a_transaction_fails_the_whole_transaction(client: Any) -> None:
    bundle_id = store_minutes(client)
    assert sign(client, bundle_id, "rsa", final=True).status_code == 200
    comp = {**client.get("/fhir/Composition/comp-minutes").get_json(), "title": "Sửa lại"}
    patient = {"resourceType": "Patient", "id": "pat-tx", "name": [{"text": "Trần Văn Tư"}]}
    resp = post(client, "", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": patient, "request": {"method": "PUT", "url": "Patient/pat-tx"}},
        {"resource": comp, "request": {"method": "PUT", "url": "Composition/comp-minutes"}}]})
    assert resp.status_code == 409
    assert client.get("/fhir/Patient/pat-tx").status_code == 404


def test_unsigned_composition_stays_editable(client: Any) -> None:
    store_minutes(client)  # a persisted but unsigned document does not lock its Composition
    comp = client.get("/fhir/Composition/comp-minutes").get_json()
    assert put(client, "Composition/comp-minutes", {**comp, "title": "Sửa trước khi ký"}).status_code == 200


def test_a_correction_replaces_the_locked_composition_and_is_signed_again(client: Any) -> None:
    old_id = store_minutes(client)
    assert sign(client, old_id, "rsa", final=True).status_code == 200
    correction = composition("comp-minutes-v2", replaces="comp-minutes")
    resp = post(client, "Composition", {k: v for k, v in correction.items() if k != "id"})
    assert resp.status_code == 201, resp.get_json()
    assert put(client, "Composition/comp-minutes-v2", correction).status_code == 201
    draft = {**correction, "title": correction["title"] + " (đính chính)"}
    assert put(client, "Composition/comp-minutes-v2", draft).status_code == 200  # editable until signed
    new_id = client.post("/fhir/Composition/comp-minutes-v2/$document?persist=true").get_json()["id"]
    assert sign(client, new_id, "rsa", final=True).status_code == 200
    assert_locked(client, "comp-minutes-v2")
    assert valid(verify(client, new_id)) and valid(verify(client, old_id))


# -- 4. $document?persist=true changes state: POST only -----------------------------------------
def test_document_persist_needs_post(client: Any) -> None:
    store_minutes(client)
    before = count(client, "Bundle")
    resp = client.get("/fhir/Composition/comp-minutes/$document?persist=true")
    assert resp.status_code == 405 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert "POST" in texts(resp) and count(client, "Bundle") == before
    assert client.get("/fhir/Composition/comp-minutes/$document").status_code == 200
    assert client.get("/fhir/Composition/comp-minutes/$document?persist=false").status_code == 200
    assert client.post("/fhir/Composition/comp-minutes/$document?persist=true").status_code == 201
    assert count(client, "Bundle") == before + 1


# -- 5. OperationDefinitions, read-only, in the CapabilityStatement -----------------------------
def test_operation_definitions_are_served_read_only_and_listed(client: Any) -> None:
    caps = client.get("/fhir/metadata").get_json()
    by_type = {r["type"]: r for r in caps["rest"][0]["resource"]}
    ops = {o["name"]: o["definition"] for o in by_type["Bundle"]["operation"]}
    assert ops["sign"] == OD + "Bundle-sign" and ops["verify-signature"] == OD + "Bundle-verify-signature"
    assert {o["name"]: o["definition"] for o in by_type["Composition"]["operation"]}["document"] == \
        OD + "Composition-document"
    system = {o["name"]: o["definition"] for o in caps["rest"][0]["operation"]}
    assert system["verify-signature"] == OD + "Bundle-verify-signature"
    for url in (OD + "Bundle-sign", OD + "Bundle-verify-signature", OD + "Composition-document"):
        found = client.get(f"/fhir/OperationDefinition?url={url}").get_json()["entry"]
        assert [e["resource"]["url"] for e in found] == [url]
    sign_od = client.get("/fhir/OperationDefinition/Bundle-sign").get_json()
    assert sign_od["code"] == "sign" and sign_od["affectsState"] is True and sign_od["instance"] is True
    assert {p["name"] for p in sign_od["parameter"]} >= {"key", "type", "final", "who", "provenance", "bundle"}
    assert put(client, "OperationDefinition/Bundle-sign", {**sign_od, "status": "retired"}).status_code == 405
    assert client.delete("/fhir/OperationDefinition/Bundle-verify-signature").status_code == 405
    assert client.get("/fhir/OperationDefinition/Bundle-sign").get_json()["status"] == "active"


# -- 6. the minutes validate against the merged vn-consultation-minutes profile ------------------
def test_minutes_compositions_validate_against_the_profile(client: Any) -> None:
    store_minutes(client)
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    demo_minutes = next(e["resource"] for e in demo["entry"] if e["resource"]["resourceType"] == "Composition")
    for comp in (composition("comp-a"), composition("comp-b", replaces="comp-minutes"), demo_minutes):
        assert comp["meta"]["profile"] == [PROFILE]
        resp = post(client, "Composition", {k: v for k, v in comp.items() if k != "id"})
        assert resp.status_code == 201, resp.get_json()
    two_chairs = composition("comp-c")
    two_chairs["attester"][1]["extension"][0]["valueCoding"]["code"] = "chair"
    resp = post(client, "Composition", two_chairs)
    assert resp.status_code == 422 and resp.get_json()["resourceType"] == "OperationOutcome"




def test_a_document_whose_composition_is_not_stored_here_locks_nothing(client: Any, signing_pki: Any) -> None:
    doc = document(client)
    doc["entry"][0]["resource"] = {**doc["entry"][0]["resource"], "id": "comp-elsewhere"}
    doc["entry"][0]["fullUrl"] = "http://other.example/fhir/Composition/comp-elsewhere"
    doc["signature"] = signature(signing_pki, doc, "ec", "Practitioner/prac-chair", "author")
    resp = post(client, "Bundle", doc)
    assert resp.status_code == 201, resp.get_json()
    [prov] = provenances(client, resp.get_json()["id"])
    assert "entity" not in prov
    later = composition("comp-elsewhere")
    assert put(client, "Composition/comp-elsewhere", later).status_code == 201
    assert put(client, "Composition/comp-elsewhere", {**later, "title": "Sửa"}).status_code == 200


def test_transaction_with_client_ids_and_relative_targets(client: Any, signing_pki: Any) -> None:
    doc = document(client)
    doc["signature"] = signature(signing_pki, doc, "rsa", "Practitioner/prac-chair", "author")
    cosign = signature(signing_pki, doc, "ec", "Practitioner/prac-secretary")
    prov = {**provenance_for("Bundle/minutes-tx", doc, cosign), "id": "prov-tx"}
    resp = post(client, "", {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**doc, "id": "minutes-tx"}, "request": {"method": "PUT", "url": "Bundle/minutes-tx"}},
        {"resource": prov, "request": {"method": "PUT", "url": "Provenance/prov-tx"}}]})
    assert resp.status_code == 200, resp.get_json()
    result = verify(client, "minutes-tx")
    assert valid(result) and len(signature_parts(result)) == 2
    assert_locked(client, "comp-minutes")
