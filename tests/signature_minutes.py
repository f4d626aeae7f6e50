"""Consultation minutes (biên bản hội chẩn từ xa) shaped as CONTRACTS.md C, and the
resources they reference, for the signature tests and the bench."""

from __future__ import annotations

from typing import Any

VN = "http://fhir.vntelehealth.org/r4"
PROFILE = f"{VN}/StructureDefinition/vn-consultation-minutes"
SECTION_SYSTEM = f"{VN}/CodeSystem/consultation-minutes-section"
ROLE_SYSTEM = f"{VN}/CodeSystem/consultation-participant-role"
CONCLUSION_TEXT = "Chẩn đoán: Nhồi máu cơ tim cấp thành dưới (I21.1). Chuyển tuyến trên can thiệp mạch vành."


def _div(text: str) -> dict[str, str]:
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{text}</p></div>'}


def _practitioner(pid: str, family: str, given: str, prefix: str) -> dict[str, Any]:
    return {"resourceType": "Practitioner", "id": pid,
            "name": [{"family": family, "given": [given], "prefix": [prefix], "text": f"{prefix} {family} {given}"}]}


def referenced_resources() -> list[dict[str, Any]]:
    return [
        {"resourceType": "Organization", "id": "org-bvdk-dongnai", "name": "Bệnh viện Đa khoa Đồng Nai"},
        {"resourceType": "Organization", "id": "org-ttyt-tanphu", "name": "Trung tâm Y tế huyện Tân Phú"},
        {"resourceType": "Patient", "id": "pat-minutes", "name": [{"family": "Nguyễn", "given": ["Văn Bình"],
                                                                   "text": "Nguyễn Văn Bình"}],
         "gender": "male", "birthDate": "1961-04-12"},
        _practitioner("prac-chair", "Ngô", "Đức Tuấn", "BS CKII"),
        _practitioner("prac-secretary", "Trần", "Thị Mai", "BS"),
        _practitioner("prac-member", "Lê", "Văn Hùng", "ThS BS"),
        {"resourceType": "Encounter", "id": "enc-minutes", "status": "finished",
         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR", "display": "virtual"},
         "subject": {"reference": "Patient/pat-minutes"},
         "serviceProvider": {"reference": "Organization/org-bvdk-dongnai"},
         "period": {"start": "2026-11-30T09:00:00+07:00", "end": "2026-11-30T09:45:00+07:00"}},
        {"resourceType": "Condition", "id": "cond-minutes",
         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                        "code": "active"}]},
         "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I21.1",
                              "display": "Nhồi máu cơ tim cấp thành dưới"}]},
         "subject": {"reference": "Patient/pat-minutes"}},
    ]


def _attester(pid: str, role: str, mode: str) -> dict[str, Any]:
    return {"mode": mode, "time": "2026-11-30T10:00:00+07:00", "party": {"reference": f"Practitioner/{pid}"},
            "extension": [{"url": f"{VN}/StructureDefinition/consultation-role",
                           "valueCoding": {"system": ROLE_SYSTEM, "code": role}}]}


def _section(code: str, title: str, text: str, entry: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    sec: dict[str, Any] = {"title": title, "code": {"coding": [{"system": SECTION_SYSTEM, "code": code,
                                                                  "display": title}]}, "text": _div(text)}
    if entry:
        sec["entry"] = entry
    return sec


def composition(cid: str = "comp-minutes", replaces: str | None = None) -> dict[str, Any]:
    comp: dict[str, Any] = {
        "resourceType": "Composition", "id": cid,
        "meta": {"profile": [PROFILE]},
        "language": "vi",
        "extension": [{"url": f"{VN}/StructureDefinition/requesting-organization",
                       "valueReference": {"reference": "Organization/org-ttyt-tanphu"}}],
        "status": "amended" if replaces else "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}],
                 "text": "Biên bản hội chẩn từ xa"},
        "category": [{"coding": [{"system": f"{VN}/CodeSystem/telehealth-service", "code": "consultation-general",
                                  "display": "Hội chẩn chung (khám, chữa bệnh)"}]}],
        "subject": {"reference": "Patient/pat-minutes"},
        "encounter": {"reference": "Encounter/enc-minutes"},
        "date": "2026-11-30T10:00:00+07:00",
        "author": [{"reference": "Practitioner/prac-chair"}],
        "title": "Biên bản hội chẩn từ xa — Nguyễn Văn Bình",
        "attester": [_attester("prac-chair", "chair", "legal"),
                     _attester("prac-secretary", "secretary", "professional"),
                     _attester("prac-member", "member", "professional")],
        "custodian": {"reference": "Organization/org-bvdk-dongnai"},
        "section": [
            _section("case-summary", "Tóm tắt bệnh án",
                     "Nam 65 tuổi, đau ngực trái 3 giờ, điện tim ST chênh lên DII, DIII, aVF."),
            _section("discussion", "Diễn biến, kết quả hội chẩn",
                     "Các thành viên thống nhất chẩn đoán nhồi máu cơ tim cấp; huyết động ổn định."),
            _section("conclusion", "Kết luận, chẩn đoán", CONCLUSION_TEXT,
                     [{"reference": "Condition/cond-minutes"}]),
            _section("treatment-plan", "Hướng điều trị",
                     "Aspirin 300 mg, clopidogrel 600 mg, chuyển Bệnh viện Đa khoa Đồng Nai trong 2 giờ."),
        ],
    }
    if replaces:
        comp["relatesTo"] = [{"code": "replaces", "targetReference": {"reference": f"Composition/{replaces}"}}]
    return comp


def document_bundle(base: str = "http://example.org/fhir") -> dict[str, Any]:
    """The document Bundle $document would assemble, built without a server."""
    resources = [composition(), *referenced_resources()]
    return {"resourceType": "Bundle", "identifier": {"system": "urn:ietf:rfc:3986",
                                                     "value": "urn:uuid:0c3e3d0e-6f2b-4c55-9d3b-2f7d5b1a9e01"},
            "type": "document", "timestamp": "2026-11-30T10:05:00+07:00",
            "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r} for r in resources]}
