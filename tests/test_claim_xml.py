"""The claim XML converter (XML1 patient/visit, XML2 drugs) produces resources that pass the profiles."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_server.profiles.claim_xml import ClaimXmlError, convert, parse_tables
from tests.fhir_helpers import FHIR_JSON

FIX = Path(__file__).resolve().parent / "fixtures" / "claim_xml"
XML1 = (FIX / "XML1.xml").read_bytes()
XML2 = (FIX / "XML2.xml").read_bytes()
DEMO = Path(__file__).resolve().parent.parent / "fhir_server" / "demo_data"
MOH = "http://fhir.ehealth.gov.vn/core"


def by_type(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["resourceType"]: e["resource"] for e in bundle["entry"]}


def test_xml1_maps_patient_and_visit_fields() -> None:
    res = by_type(convert(XML1, XML2))
    patient, encounter = res["Patient"], res["Encounter"]
    assert patient["name"][0] == {"use": "official", "text": "Nguyễn Văn Thử Nghiệm", "family": "Nguyễn",
                                  "given": ["Văn", "Thử", "Nghiệm"]}
    assert patient["birthDate"] == "1985-05-20" and patient["gender"] == "male"
    ids = {i["system"]: i["value"] for i in patient["identifier"]}
    assert ids[f"{MOH}/sid/national_id"] == "001085012345" and ids[f"{MOH}/sid/insurance_number"] == "HN4010123456789"
    assert patient["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "01"
    assert encounter["class"]["code"] == "VR" and encounter["type"][0]["coding"][0]["code"] == "examination"
    assert encounter["period"] == {"start": "2026-12-07T09:00:00+07:00", "end": "2026-12-07T09:20:00+07:00"}
    assert encounter["reasonCode"][0]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}
    assert encounter["participant"][0]["individual"]["identifier"]["value"] == "000001/HN-CCHN"


def test_xml2_maps_drug_rows_to_e_prescriptions() -> None:
    rx = by_type(convert(XML1, XML2))["MedicationRequest"]
    assert rx["identifier"][0]["value"] == "01001ab12cd3-c" and rx["category"][0]["coding"][0]["code"] == "c"
    assert {c["code"] for c in rx["medicationCodeableConcept"]["coding"]} == {"40.1234", "VD-00001-00"}
    assert rx["medicationCodeableConcept"]["text"] == "Amlodipin 5 mg"
    assert rx["dosageInstruction"][0]["timing"] == {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}
    assert rx["dispenseRequest"]["quantity"] == {"value": 30, "unit": "viên"}
    assert rx["dispenseRequest"]["expectedSupplyDuration"]["value"] == 30
    assert rx["authoredOn"] == "2026-12-07T09:15:00+07:00"


def test_envelope_with_base64_tables_is_read() -> None:
    def file(kind: str, raw: bytes) -> str:
        return f"<FILEHOSO><LOAIHOSO>{kind}</LOAIHOSO><NOIDUNGFILE>{base64.b64encode(raw).decode()}</NOIDUNGFILE>" \
               "</FILEHOSO>"

    envelope = f"<GIAMDINHHS><THONGTINHOSO><DANHSACHHOSO><HOSO>{file('XML1', XML1)}{file('XML2', XML2)}</HOSO>" \
               "</DANHSACHHOSO></THONGTINHOSO></GIAMDINHHS>"
    record = parse_tables(envelope)
    assert record.xml1["MA_LK"] == "BM2026120700001" and len(record.xml2) == 1
    with pytest.raises(ClaimXmlError):
        parse_tables("<nope")
    with pytest.raises(ClaimXmlError):
        parse_tables("<CHITIEU_CHITIET_THUOC/>")


def test_converted_bundle_is_accepted_by_the_server(client: Any) -> None:
    demo = {}
    for f in sorted(DEMO.glob("*.json")):
        for e in json.loads(f.read_text(encoding="utf-8"))["entry"]:
            demo[f"{e['resource']['resourceType']}/{e['resource']['id']}"] = e["resource"]
    org = demo["Organization/org-bach-mai"]
    assert client.put("/fhir/Organization/org-bach-mai", json=org, headers={"Content-Type": FHIR_JSON}).status_code \
        in (200, 201)
    resp = client.post("/fhir", json=convert(XML1, XML2), headers={"Content-Type": FHIR_JSON})
    assert resp.status_code == 200, resp.get_json()
    rx = client.get("/fhir/MedicationRequest?prescription-code=01001ab12cd3-c").get_json()
    assert rx["total"] == 1
    assert rx["entry"][0]["resource"]["requester"]["reference"] == "Organization/org-bach-mai"
    # The facility prefix is checked against MA_CSKCB's registered Organization.
    wrong = convert(XML1.replace(b"01001ab12cd3-c", b"79001ab12cd3-c"), XML2)
    refused = client.post("/fhir", json=wrong, headers={"Content-Type": FHIR_JSON})
    assert refused.status_code == 422
