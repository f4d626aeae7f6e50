"""Issue #6 through HTTP: $document, $sign (RSA, EC, several signers), $verify-signature,
client-signed Bundles verified on create, and immutability of signed documents."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fhir_server.signatures.fhir_signature import provenance_for, sign_document, signature_type
from fhir_server.signatures.signer import KeyStore
from tests.fhir_helpers import FHIR_JSON, post, put
from tests.signature_minutes import CONCLUSION_TEXT, composition, referenced_resources
from tests.signature_pki import signer


@pytest.fixture
def app(settings: Any, signing_pki: Any) -> Any:
    from fhir_server.app import create_app

    store = KeyStore()
    store.add(signer(signing_pki, "rsa"), owner="Practitioner/prac-chair")
    store.add(signer(signing_pki, "ec"), owner="Practitioner/prac-secretary")
    store.add(signer(signing_pki, "ec2"), owner="Practitioner/prac-member")
    application = create_app(settings.with_(extra={"trust_anchors": str(signing_pki.anchor_file),
                                                   "signing_keystore": store}))
    yield application
    application.extensions["fhir_service"].repo.engine.dispose()


def params(**values: Any) -> dict[str, Any]:
    out = []
    for name, value in values.items():
        key = {bool: "valueBoolean", str: "valueString"}.get(type(value), "valueReference")
        out.append({"name": name, key: value})
    return {"resourceType": "Parameters", "parameter": out}


def store_minutes(client: Any, comp: dict[str, Any] | None = None) -> str:
    for resource in [*referenced_resources(), comp or composition()]:
        assert put(client, f"{resource['resourceType']}/{resource['id']}", resource).status_code in (200, 201)
    comp_id = (comp or composition())["id"]
    resp = client.post(f"/fhir/Composition/{comp_id}/$document?persist=true")
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["id"])


def sign(client: Any, bundle_id: str, key: str, **extra: Any) -> Any:
    return post(client, f"Bundle/{bundle_id}/$sign", params(key=key, **extra))


def verify(client: Any, bundle_id: str) -> dict[str, Any]:
    resp = client.get(f"/fhir/Bundle/{bundle_id}/$verify-signature")
    assert resp.status_code == 200, resp.get_json()
    return dict(resp.get_json())


def signature_parts(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in result["parameter"]:
        if p["name"] == "signature":
            fields: dict[str, Any] = {}
            for part in p["part"]:
                if part["name"] == "reason":
                    fields.setdefault("reasons", []).append(part["part"][0]["valueCode"])
                else:
                    fields[part["name"]] = next(v for k, v in part.items() if k.startswith("value"))
            out.append(fields)
    return out


def valid(result: dict[str, Any]) -> bool:
    return bool(next(p["valueBoolean"] for p in result["parameter"] if p["name"] == "valid"))


def test_document_bundle_has_composition_first_identifier_timestamp_and_references(client: Any) -> None:
    bundle_id = store_minutes(client)
    bundle = client.get(f"/fhir/Bundle/{bundle_id}").get_json()
    assert bundle["type"] == "document" and bundle["identifier"]["value"].startswith("urn:uuid:")
    assert bundle["timestamp"]
    assert bundle["entry"][0]["resource"]["resourceType"] == "Composition"
    included = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
    assert {"Patient/pat-minutes", "Encounter/enc-minutes", "Condition/cond-minutes", "Practitioner/prac-member",
            "Organization/org-ttyt-tanphu", "Organization/org-bvdk-dongnai"} <= included


def test_type_level_document_takes_the_id_parameter(client: Any) -> None:
    store_minutes(client)
    resp = client.get("/fhir/Composition/$document?id=comp-minutes")
    assert resp.status_code == 200 and resp.get_json()["type"] == "document"


def test_sign_with_ec_and_rsa_signers_then_verify_ok(client: Any) -> None:
    bundle_id = store_minutes(client)
    member = sign(client, bundle_id, "ec2")
    secretary = sign(client, bundle_id, "ec", type="coauthor")
    chair = sign(client, bundle_id, "rsa", final=True, type="author")
    assert member.status_code == secretary.status_code == chair.status_code == 200, chair.get_json()
    result = verify(client, bundle_id)
    sigs = signature_parts(result)
    assert valid(result) and len(sigs) == 3
    assert all(s["valid"] and s["status"] == "valid" for s in sigs)
    assert {s["algorithm"] for s in sigs} == {"PS256", "ES256"}
    final = next(s for s in sigs if s["location"] == "Bundle.signature")
    assert final["signer"] == "BS CKII Ngô Đức Tuấn" and final["who"] == {"reference": "Practitioner/prac-chair"}
    assert final["certificateIssuer"].startswith("CN=VN Telehealth Test Signing CA")
    assert final["certificateSerial"] and final["signingTime"] and final["revocation"] == "good"


def test_final_signature_goes_into_bundle_signature_and_each_signing_has_a_provenance(client: Any) -> None:
    bundle_id = store_minutes(client)
    sign(client, bundle_id, "ec")
    chair = sign(client, bundle_id, "rsa", final=True).get_json()
    bundle = next(p["resource"] for p in chair["parameter"] if p["name"] == "bundle")
    sig = bundle["signature"]
    assert sig["sigFormat"] == "application/jose" and sig["type"][0]["system"] == "urn:iso-astm:E1762-95:2013"
    assert sig["type"][0]["code"] == "1.2.840.10065.1.12.1.1" and sig["when"]
    provs = client.get(f"/fhir/Provenance?target=Bundle/{bundle_id}").get_json()["entry"]
    assert len(provs) == 2
    for entry in provs:
        prov = entry["resource"]
        assert prov["target"][0]["reference"] == f"Bundle/{bundle_id}"
        assert prov["agent"][0]["who"]["reference"].startswith("Practitioner/")
        assert prov["signature"][0]["sigFormat"] == "application/jose"


def test_sign_response_carries_no_private_key(client: Any) -> None:
    bundle_id = store_minutes(client)
    text = sign(client, bundle_id, "rsa", final=True).get_data(as_text=True)
    assert "PRIVATE" not in text and '"d"' not in text and "BEGIN" not in text


def test_second_final_signature_is_refused(client: Any) -> None:
    bundle_id = store_minutes(client)
    assert sign(client, bundle_id, "rsa", final=True).status_code == 200
    resp = sign(client, bundle_id, "ec", final=True)
    assert resp.status_code == 409 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_sign_with_an_unknown_key_or_by_get_is_refused(client: Any) -> None:
    bundle_id = store_minutes(client)
    assert sign(client, bundle_id, "no-such-key").status_code == 400
    assert client.get(f"/fhir/Bundle/{bundle_id}/$sign?key=rsa").status_code == 405


def test_signed_bundle_cannot_be_updated_patched_or_deleted(client: Any) -> None:
    bundle_id = store_minutes(client)
    bundle = next(p["resource"] for p in sign(client, bundle_id, "rsa", final=True).get_json()["parameter"]
                  if p["name"] == "bundle")
    changed = copy.deepcopy(bundle)
    changed["entry"][0]["resource"]["title"] = "Sửa lại"
    resp = put(client, f"Bundle/{bundle_id}", changed)
    assert resp.status_code == 409 and resp.get_json()["resourceType"] == "OperationOutcome"
    resp = client.patch(f"/fhir/Bundle/{bundle_id}", json=[{"op": "replace", "path": "/timestamp",
                                                              "value": "2027-01-01T00:00:00Z"}],
                        headers={"Content-Type": "application/json-patch+json"})
    assert resp.status_code == 409
    resp = client.delete(f"/fhir/Bundle/{bundle_id}")
    assert resp.status_code == 405 and resp.get_json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Bundle/{bundle_id}").get_json()["signature"] == bundle["signature"]


def test_cosigned_bundle_and_signing_provenance_are_immutable(client: Any) -> None:
    bundle_id = store_minutes(client)
    prov = next(p["resource"] for p in sign(client, bundle_id, "ec").get_json()["parameter"]
                if p["name"] == "provenance")
    bundle = client.get(f"/fhir/Bundle/{bundle_id}").get_json()
    assert put(client, f"Bundle/{bundle_id}", bundle).status_code == 409
    assert client.delete(f"/fhir/Provenance/{prov['id']}").status_code == 405


def test_unsigned_bundle_stays_editable(client: Any) -> None:
    bundle_id = store_minutes(client)
    bundle = client.get(f"/fhir/Bundle/{bundle_id}").get_json()
    assert put(client, f"Bundle/{bundle_id}", bundle).status_code == 200
    assert client.delete(f"/fhir/Bundle/{bundle_id}").status_code == 204


def test_client_signed_bundle_is_verified_then_accepted(client: Any, signing_pki: Any) -> None:
    store_minutes(client)
    document = client.get("/fhir/Composition/comp-minutes/$document").get_json()
    document["signature"] = sign_document(document, signer(signing_pki, "ec"), {"reference": "Practitioner/prac-chair"},
                                          [signature_type("author")])  # type: ignore[list-item]
    resp = post(client, "Bundle", document)
    assert resp.status_code == 201, resp.get_json()
    assert valid(verify(client, resp.get_json()["id"]))


def test_client_signed_bundle_with_changed_text_is_rejected(client: Any, signing_pki: Any) -> None:
    store_minutes(client)
    document = client.get("/fhir/Composition/comp-minutes/$document").get_json()
    document["signature"] = sign_document(document, signer(signing_pki, "ec"), {"reference": "Practitioner/prac-chair"},
                                          [signature_type("author")])  # type: ignore[list-item]
    section = document["entry"][0]["resource"]["section"][2]
    section["text"]["div"] = section["text"]["div"].replace("I21.1", "I21.2")
    resp = post(client, "Bundle", document)
    assert resp.status_code == 422
    issue = resp.get_json()["issue"][0]
    assert issue["expression"] == ["Bundle.signature"] and "thay đổi" in issue["details"]["text"]


def test_client_signed_bundle_with_revoked_certificate_is_rejected(client: Any, signing_pki: Any) -> None:
    store_minutes(client)
    document = client.get("/fhir/Composition/comp-minutes/$document").get_json()
    document["signature"] = sign_document(document, signer(signing_pki, "revoked-ocsp"),
                                          {"reference": "Practitioner/prac-chair"}, [signature_type("author")])  # type: ignore[list-item]
    assert post(client, "Bundle", document).status_code == 422


def test_client_cosigner_provenance_is_verified_against_the_stored_bundle(client: Any, signing_pki: Any) -> None:
    bundle_id = store_minutes(client)
    bundle = client.get(f"/fhir/Bundle/{bundle_id}").get_json()
    sig = sign_document(bundle, signer(signing_pki, "ec2"), {"reference": "Practitioner/prac-member"},
                        [signature_type("coauthor")])  # type: ignore[list-item]
    good = provenance_for(f"Bundle/{bundle_id}", bundle, sig)
    assert post(client, "Provenance", good).status_code == 201
    other = copy.deepcopy(bundle)
    other["entry"][0]["resource"]["title"] = "Biên bản khác"
    forged = provenance_for(f"Bundle/{bundle_id}", bundle, sign_document(
        other, signer(signing_pki, "ec2"), {"reference": "Practitioner/prac-member"},
        [signature_type("coauthor")]))  # type: ignore[list-item]
    resp = post(client, "Provenance", forged)
    assert resp.status_code == 422 and resp.get_json()["issue"][0]["expression"] == ["Provenance.signature"]
    assert len(signature_parts(verify(client, bundle_id))) == 1


def test_verify_signature_of_something_that_is_not_a_document_is_an_operation_outcome(client: Any) -> None:
    resp = post(client, "$verify-signature", {"resourceType": "Bundle", "type": "collection", "entry": []})
    assert resp.status_code == 422 and resp.get_json()["resourceType"] == "OperationOutcome"
    resp = post(client, "$verify-signature", {"resourceType": "Patient"})
    assert resp.status_code == 422
    pid = post(client, "Bundle", {"resourceType": "Bundle", "type": "collection"}).get_json()["id"]
    assert client.get(f"/fhir/Bundle/{pid}/$verify-signature").status_code == 422


def test_unsigned_document_is_not_valid(client: Any) -> None:
    bundle_id = store_minutes(client)
    result = verify(client, bundle_id)
    assert not valid(result) and signature_parts(result)[0]["reasons"] == ["no-signature"]


def test_correction_is_a_new_composition_that_replaces_the_old_and_is_signed_again(client: Any) -> None:
    old_id = store_minutes(client)
    assert sign(client, old_id, "rsa", final=True).status_code == 200
    correction = composition("comp-minutes-v2", replaces="comp-minutes")
    correction["section"][2]["text"]["div"] = correction["section"][2]["text"]["div"].replace(
        CONCLUSION_TEXT[:10], "Đính chính. " + CONCLUSION_TEXT[:10])
    new_id = store_minutes(client, correction)
    assert sign(client, new_id, "rsa", final=True).status_code == 200
    assert valid(verify(client, new_id)) and valid(verify(client, old_id))
    new = client.get(f"/fhir/Bundle/{new_id}").get_json()
    assert new["entry"][0]["resource"]["relatesTo"][0]["code"] == "replaces"


def test_verify_posted_package_with_provenances(client: Any) -> None:
    bundle_id = store_minutes(client)
    sign(client, bundle_id, "ec")
    sign(client, bundle_id, "rsa", final=True)
    package = client.get(f"/fhir/Bundle?_id={bundle_id}&_revinclude=Provenance:target").get_json()
    resp = client.post("/fhir/$verify-signature", json=package, headers={"Content-Type": FHIR_JSON})
    result = resp.get_json()
    assert resp.status_code == 200 and valid(result)
    # the final signing's Provenance repeats Bundle.signature: listed once, with where else it is recorded
    assert len(signature_parts(result)) == 2


class SignedInAs:
    """A minimal policy that attaches a principal (the real one comes from auth/)."""

    def __init__(self, user: str) -> None:
        from fhir_server.principal import Principal

        self.principal = Principal(client_id="his-tanphu", user=user, organization="Organization/org-bvdk-dongnai")

    def authorize(self, req: Any, interaction: str, operation: Any = None) -> None:
        req.principal = self.principal

    def visible(self, req: Any, stored: Any) -> bool:
        return True

    def boundary(self, req: Any) -> Any:
        return None

    def check_write(self, req: Any, resource: Any, current: Any) -> None:
        return None

    def security_statement(self, base_url: str) -> Any:
        return None


def test_a_user_signs_only_with_their_own_key(settings: Any, signing_pki: Any) -> None:
    from fhir_server.app import create_app

    store = KeyStore()
    store.add(signer(signing_pki, "rsa"), owner="Practitioner/prac-chair")
    store.add(signer(signing_pki, "ec"), owner="Practitioner/prac-secretary")
    application = create_app(settings.with_(extra={"trust_anchors": str(signing_pki.anchor_file),
                                                   "signing_keystore": store}),
                             authorizer=SignedInAs("Practitioner/prac-secretary"))
    try:
        client = application.test_client()
        bundle_id = store_minutes(client)
        assert sign(client, bundle_id, "rsa").status_code == 403
        resp = sign(client, bundle_id, "ec")
        assert resp.status_code == 200
        prov = next(p["resource"] for p in resp.get_json()["parameter"] if p["name"] == "provenance")
        assert prov["signature"][0]["who"] == {"reference": "Practitioner/prac-secretary"}
    finally:
        application.extensions["fhir_service"].repo.engine.dispose()
