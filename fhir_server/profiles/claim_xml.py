"""Claim XML (QĐ 4750/QĐ-BYT, QĐ 130/QĐ-BYT) → resources of the telehealth profiles.

HIS systems already produce the insurance claim XML; this converter turns its table XML1 (patient and visit
summary, ``TONG_HOP``) and table XML2 (drugs, ``CHI_TIET_THUOC``) into a FHIR transaction Bundle:
Patient (vn-patient), Encounter (vn-encounter when ``MA_LOAI_KCB`` is remote care) and one
MedicationRequest (vn-medication-request) per XML2 row. The field-by-field mapping, with its confidence, is in
``docs/claim-xml-mapping.md``. Accepts the table XML itself or the ``GIAMDINHHS`` envelope whose
``FILEHOSO/NOIDUNGFILE`` carry each table base64-encoded.

The Organization of ``MA_CSKCB`` is referenced conditionally (``Organization?identifier=…facility-code|…``), so
the transaction links to the registered facility; the prescription code (``MA_DON_THUOC``) comes from the national
prescription system and must be present for the e-prescription profile.
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from terminology.loader import CANONICAL_BASE, MOH_CORE_BASE

MOH = MOH_CORE_BASE
SD = f"{CANONICAL_BASE}/StructureDefinition/"
CS = f"{CANONICAL_BASE}/CodeSystem/"
SID = f"{CANONICAL_BASE}/sid/"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TZ = "+07:00"
#: MA_LOAI_KCB of remote examination and treatment (KCB từ xa) — vietnam.md [M]
REMOTE_VISIT_TYPES = {"14"}
#: GIOI_TINH (CodeSystem claim-sex) → FHIR gender, as ConceptMap claim-sex-to-administrative-gender
SEX = {"1": "male", "2": "female", "3": "unknown"}


class ClaimXmlError(ValueError):
    pass


@dataclass
class ClaimRecord:
    xml1: dict[str, str]
    xml2: list[dict[str, str]] = field(default_factory=list)


def _fields(element: ET.Element) -> dict[str, str]:
    return {child.tag.upper(): (child.text or "").strip() for child in element if len(child) == 0}


def _parse(raw: bytes | str) -> ET.Element:
    try:
        return ET.fromstring(raw)
    except ET.ParseError as exc:
        raise ClaimXmlError(f"not well-formed XML: {exc}") from exc


def parse_tables(*documents: bytes | str) -> ClaimRecord:
    """XML1 (TONG_HOP) and XML2 (CHI_TIET_THUOC rows) from table documents or a GIAMDINHHS envelope."""
    xml1: dict[str, str] | None = None
    xml2: list[dict[str, str]] = []
    queue = [_parse(d) for d in documents]
    while queue:
        root = queue.pop(0)
        for f in root.iter("FILEHOSO"):
            content = f.findtext("NOIDUNGFILE") or ""
            try:
                queue.append(_parse(base64.b64decode(content)))
            except (ValueError, ClaimXmlError) as exc:
                raise ClaimXmlError(f"FILEHOSO {f.findtext('LOAIHOSO')}: {exc}") from exc
        node = root if root.tag == "TONG_HOP" else root.find(".//TONG_HOP")
        if node is not None:
            xml1 = _fields(node)
        xml2 += [_fields(row) for row in root.iter("CHI_TIET_THUOC")]
    if xml1 is None:
        raise ClaimXmlError("no XML1 (TONG_HOP) table found")
    return ClaimRecord(xml1=xml1, xml2=xml2)


def _date(value: str) -> str | None:
    """yyyymmdd → yyyy-mm-dd (NGAY_SINH may carry yyyymmddHHMM, QĐ 130)."""
    if re.fullmatch(r"\d{8}(\d{4})?", value or ""):
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    return None


def _instant(value: str) -> str | None:
    """yyyymmddHHMM (Vietnam time) → dateTime with zone."""
    if re.fullmatch(r"\d{12}", value or ""):
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}T{value[8:10]}:{value[10:12]}:00{TZ}"
    return _date(value)


def _number(value: str) -> float | int | None:
    try:
        number = float((value or "").replace(",", "."))
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def _split(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[;,]", value or "") if v.strip()]


def facility_reference(code: str) -> dict[str, Any]:
    return {"reference": f"Organization?identifier={SID}facility-code|{code}"}


def patient_resource(x1: dict[str, str]) -> dict[str, Any]:
    name = x1.get("HO_TEN", "").strip()
    parts = name.split()
    patient: dict[str, Any] = {"resourceType": "Patient", "meta": {"profile": [SD + "vn-patient"]}}
    if x1.get("MA_DANTOC"):
        patient["extension"] = [{"url": f"{MOH}/StructureDefinition/extension-race", "valueCodeableConcept": {
            "coding": [{"system": f"{CS}ethnicity", "code": x1["MA_DANTOC"].zfill(2)}]}}]
    identifiers: list[dict[str, Any]] = []
    if x1.get("SO_CCCD"):
        identifiers.append({"use": "official", "system": f"{MOH}/sid/national_id", "value": x1["SO_CCCD"]})
    for card in _split(x1.get("MA_THE_BHYT", "")):
        identifiers.append({"system": f"{MOH}/sid/insurance_number", "value": card})
    if x1.get("MA_BN"):
        identifier: dict[str, Any] = {"system": f"{MOH}/sid/patient-internal-id", "value": x1["MA_BN"]}
        if x1.get("MA_CSKCB"):
            identifier["assigner"] = {"identifier": {"system": f"{SID}facility-code", "value": x1["MA_CSKCB"]}}
        identifiers.append(identifier)
    if identifiers:
        patient["identifier"] = identifiers
    patient["name"] = [{"use": "official", "text": name, **({"family": parts[0]} if parts else {}),
                        **({"given": parts[1:]} if len(parts) > 1 else {})}]
    if x1.get("DIEN_THOAI"):
        patient["telecom"] = [{"system": "phone", "value": x1["DIEN_THOAI"]}]
    if x1.get("GIOI_TINH") in SEX:
        patient["gender"] = SEX[x1["GIOI_TINH"]]
    birth = _date(x1.get("NGAY_SINH", ""))
    if birth:
        patient["birthDate"] = birth
    address: dict[str, Any] = {"use": "home"}
    extensions = []
    if re.fullmatch(r"\d{2}", x1.get("MATINH_CU_TRU", "")):
        extensions.append({"url": SD + "address-province", "valueCoding": {"system": f"{CS}province",
                                                                            "code": x1["MATINH_CU_TRU"]}})
    if re.fullmatch(r"\d{5}", x1.get("MAXA_CU_TRU", "")):
        extensions.append({"url": SD + "address-commune", "valueCoding": {"system": f"{CS}commune",
                                                                           "code": x1["MAXA_CU_TRU"]}})
    if extensions:
        address["extension"] = extensions
    if x1.get("DIA_CHI"):
        address["text"] = x1["DIA_CHI"]
    if len(address) > 1:
        address["country"] = "VN"
        patient["address"] = [address]
    return patient


def encounter_resource(x1: dict[str, str], patient_ref: str) -> dict[str, Any]:
    remote = x1.get("MA_LOAI_KCB", "") in REMOTE_VISIT_TYPES
    enc: dict[str, Any] = {"resourceType": "Encounter"}
    if remote:
        enc["meta"] = {"profile": [SD + "vn-encounter"]}
    if x1.get("MA_LK"):
        enc["identifier"] = [{"system": f"{SID}claim-episode", "value": x1["MA_LK"]}]
    enc["status"] = "finished" if x1.get("NGAY_RA") else "in-progress"
    enc["class"] = {"system": V3_ACT, "code": "VR", "display": "virtual"} if remote else \
        {"system": V3_ACT, "code": "AMB", "display": "ambulatory"}
    if remote:
        enc["type"] = [{"coding": [{"system": f"{CS}telehealth-service", "code": "examination",
                                    "display": "Khám bệnh, chữa bệnh từ xa"}]}]
    enc["subject"] = {"reference": patient_ref}
    if x1.get("MA_BAC_SI"):
        enc["participant"] = [{"individual": {"identifier": {"system": f"{MOH}/sid/provider-license-number",
                                                             "value": code}}}
                              for code in _split(x1["MA_BAC_SI"])]
    period = {k: v for k, v in (("start", _instant(x1.get("NGAY_VAO", ""))),
                                ("end", _instant(x1.get("NGAY_RA", "")))) if v}
    if period:
        enc["period"] = period
    reasons = [x1["MA_BENH_CHINH"]] if x1.get("MA_BENH_CHINH") else []
    reasons += _split(x1.get("MA_BENH_KT", ""))
    if reasons:
        text = x1.get("CHAN_DOAN_RV") or x1.get("CHAN_DOAN_VAO")
        enc["reasonCode"] = [{"coding": [{"system": ICD10, "code": code}], **({"text": text} if text and i == 0
                                                                                  else {})}
                             for i, code in enumerate(reasons)]
    if x1.get("MA_CSKCB"):
        enc["serviceProvider"] = facility_reference(x1["MA_CSKCB"])
    return enc


def _timing(dosage_text: str) -> dict[str, Any]:
    m = re.search(r"(\d+)\s*lần\s*/\s*ngày", dosage_text, re.IGNORECASE)
    if m:
        return {"repeat": {"frequency": int(m.group(1)), "period": 1, "periodUnit": "d"}}
    return {"code": {"text": dosage_text or "theo chỉ định"}}


def medication_request(x1: dict[str, str], x2: dict[str, str], patient_ref: str, encounter_ref: str
                       ) -> dict[str, Any]:
    code = x2.get("MA_DON_THUOC") or x1.get("MA_DON_THUOC", "")
    rx: dict[str, Any] = {"resourceType": "MedicationRequest", "meta": {"profile": [SD + "vn-medication-request"]}}
    weight = _number(x1.get("CAN_NANG", ""))
    if weight:
        rx["extension"] = [{"url": SD + "patient-weight",
                            "valueQuantity": {"value": weight, "unit": "kg", "system": UCUM, "code": "kg"}}]
    if code:
        rx["identifier"] = [{"system": f"{SID}prescription-code", "value": code}]
    rx["status"] = "active"
    rx["intent"] = "order"
    kind = code[-1] if re.fullmatch(r".+-[cnhy]", code) else "c"
    rx["category"] = [{"coding": [{"system": f"{CS}prescription-kind", "code": kind}]}]
    codings = []
    if x2.get("MA_THUOC"):
        codings.append({"system": f"{SID}national-drug-code", "code": x2["MA_THUOC"]})
    if x2.get("SO_DANG_KY"):
        codings.append({"system": f"{SID}drug-registration-number", "code": x2["SO_DANG_KY"]})
    text = " ".join(v for v in (x2.get("TEN_THUOC"), x2.get("HAM_LUONG")) if v)
    rx["medicationCodeableConcept"] = {**({"coding": codings} if codings else {}), **({"text": text} if text else {})}
    rx["subject"] = {"reference": patient_ref}
    rx["encounter"] = {"reference": encounter_ref}
    authored = _instant(x2.get("NGAY_YL", "")) or _instant(x1.get("NGAY_VAO", ""))
    if authored:
        rx["authoredOn"] = authored
    if x1.get("MA_CSKCB"):
        rx["requester"] = facility_reference(x1["MA_CSKCB"])
    dosage_text = x2.get("LIEU_DUNG", "")
    dosage: dict[str, Any] = {"text": dosage_text or x2.get("CACH_DUNG", ""), "timing": _timing(dosage_text)}
    if x2.get("CACH_DUNG"):
        dosage["patientInstruction"] = x2["CACH_DUNG"]
    if x2.get("DUONG_DUNG"):
        dosage["route"] = {"coding": [{"system": f"{SID}claim-route", "code": x2["DUONG_DUNG"]}],
                           "text": x2["DUONG_DUNG"]}
    rx["dosageInstruction"] = [dosage]
    dispense: dict[str, Any] = {}
    qty = _number(x2.get("SO_LUONG", ""))
    if qty is not None:
        dispense["quantity"] = {"value": qty, **({"unit": x2["DON_VI_TINH"]} if x2.get("DON_VI_TINH") else {})}
    days = _number(x1.get("SO_NGAY_DTRI", ""))
    if days is not None:
        dispense["expectedSupplyDuration"] = {"value": days, "unit": "ngày", "system": UCUM, "code": "d"}
    if dispense:
        rx["dispenseRequest"] = dispense
    return rx


def to_bundle(record: ClaimRecord) -> dict[str, Any]:
    """A transaction Bundle: Patient (conditional on CCCD), Encounter, MedicationRequests."""
    x1 = dict(record.xml1)
    if not x1.get("MA_BAC_SI"):  # XML1 has no prescriber: the doctors of the XML2 rows
        x1["MA_BAC_SI"] = ";".join(dict.fromkeys(c for row in record.xml2 for c in _split(row.get("MA_BAC_SI", ""))))
    pat_url, enc_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    patient = patient_resource(x1)
    entries: list[dict[str, Any]] = []
    request: dict[str, Any] = {"method": "POST", "url": "Patient"}
    if x1.get("SO_CCCD"):
        request["ifNoneExist"] = f"identifier={MOH}/sid/national_id|{x1['SO_CCCD']}"
    entries.append({"fullUrl": pat_url, "resource": patient, "request": request})
    entries.append({"fullUrl": enc_url, "resource": encounter_resource(x1, pat_url),
                    "request": {"method": "POST", "url": "Encounter"}})
    for row in record.xml2:
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": medication_request(x1, row, pat_url,
                                                                                              enc_url),
                        "request": {"method": "POST", "url": "MedicationRequest"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def convert(*documents: bytes | str) -> dict[str, Any]:
    return to_bundle(parse_tables(*documents))
