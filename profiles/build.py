"""Author the telehealth profiles (differentials) and write them with generated snapshots.

Run ``python -m profiles.build`` from the repository root: it fetches the base R4 StructureDefinitions
(``npm pack hl7.fhir.r4.examples@4.0.1``, cached; or ``R4_PACKAGE_DIR`` pointing at an unpacked
``package/`` directory), writes ``profiles/StructureDefinition-<id>.json`` (differential + snapshot) and
``profiles/SOURCES.md``. The JSON files are committed: the server compiles them at start-up and never
runs this script. Identifier systems, extensions and codes follow ``terminology/README.md``.

Invariants carry an English ``human`` text and its Vietnamese translation (the standard ``translation``
extension on ``_human``). Invariants that need data outside the resource (the requester's facility code,
the stored version, the patient's age) or a configurable severity are marked with the extension
``…/StructureDefinition/server-rule`` naming the rule that ``fhir_server/profiles/rules.py`` implements;
their ``expression`` is then a description for other validators, which may ignore them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

from profiles.snapshot import generate_snapshot
from terminology.loader import CANONICAL_BASE, MOH_CORE_BASE

Res = dict[str, Any]
HERE = Path(__file__).resolve().parent
SD = f"{CANONICAL_BASE}/StructureDefinition/"
VS = f"{CANONICAL_BASE}/ValueSet/"
CS = f"{CANONICAL_BASE}/CodeSystem/"
SID = f"{CANONICAL_BASE}/sid/"
MOH = MOH_CORE_BASE
NATIONAL_ID = f"{MOH}/sid/national_id"
INSURANCE = f"{MOH}/sid/insurance_number"
LICENSE = f"{MOH}/sid/provider-license-number"
MEDICAL_LICENSE = f"{MOH}/sid/provider-medical-license-number"
RACE = f"{MOH}/StructureDefinition/extension-race"
FACILITY = f"{SID}facility-code"
PRESCRIPTION = f"{SID}prescription-code"
DRUG_CODE = f"{SID}national-drug-code"
DRUG_REG = f"{SID}drug-registration-number"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
SERVER_RULE = f"{SD}server-rule"
VERSION = "0.1.0"
DATE = "2026-12-01"
PUBLISHER = "Dự án máy chủ FHIR khám, chữa bệnh từ xa Việt Nam (VN Telehealth FHIR project)"
R4_PACKAGE = "hl7.fhir.r4.examples@4.0.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vn-telehealth-fhir"


# ---------------------------------------------------------------- small authoring language
def el(element_id: str, **fields: Any) -> Res:
    path = ".".join(p.split(":")[0] for p in element_id.split("."))
    e: Res = {"id": element_id, "path": path}
    last = element_id.rsplit(".", 1)[-1]
    if ":" in last:
        e["sliceName"] = last.split(":", 1)[1]
    e.update(fields)
    return e


def bind(vs_id: str, strength: str = "required") -> Res:
    url = vs_id if "://" in vs_id else VS + vs_id
    return {"strength": strength, "valueSet": url}


def inv(key: str, en: str, vi: str, expression: str, severity: str = "error", rule: str | None = None) -> Res:
    c: Res = {"key": key, "severity": severity, "human": en,
              "_human": {"extension": [{"url": TRANSLATION, "extension": [
                  {"url": "lang", "valueCode": "vi"}, {"url": "content", "valueString": vi}]}]},
              "expression": expression}
    if rule:
        c["extension"] = [{"url": SERVER_RULE, "valueCode": rule}]
    c["source"] = "SELF"
    return c


def slicing(path: str = "system", ordered: bool = False) -> Res:
    return {"discriminator": [{"type": "value", "path": path}], "ordered": ordered, "rules": "open"}


def ident_slice(base: str, name: str, system: str, mn: int, mx: str, short: str,
                constraints: list[Res] | None = None) -> list[Res]:
    head = el(f"{base}.identifier:{name}", min=mn, max=mx, short=short)
    if constraints:
        head["constraint"] = constraints
    return [head,
            el(f"{base}.identifier:{name}.system", min=1, fixedUri=system),
            el(f"{base}.identifier:{name}.value", min=1)]


def ext_slice(path: str, name: str, url: str, mn: int, mx: str, short: str) -> Res:
    return el(f"{path}:{name}", min=mn, max=mx, short=short, type=[{"code": "Extension", "profile": [url]}])


def ref(*types: str) -> list[Res]:
    return [{"code": "Reference", "targetProfile": [f"http://hl7.org/fhir/StructureDefinition/{t}" for t in types]}]


def address_elements(base: str) -> list[Res]:
    return [
        el(f"{base}.address.extension", slicing=slicing("url")),
        ext_slice(f"{base}.address.extension", "province", SD + "address-province", 0, "1",
                  "Tỉnh/thành phố (mã 2 chữ số) / province code"),
        ext_slice(f"{base}.address.extension", "commune", SD + "address-commune", 0, "1",
                  "Xã/phường (mã 5 chữ số) / commune code"),
    ]


# ---------------------------------------------------------------- the profiles
PROFILES: list[tuple[str, str, str, str, str, list[Res]]] = []


def profile(pid: str, rtype: str, title: str, vi: str, en: str, elements: list[Res]) -> None:
    PROFILES.append((pid, rtype, title, vi, en, elements))


FACILITY_FORMAT = inv("vn-org-1", "The facility code (mã cơ sở KCB) is 5 digits: 2-digit province code + "
                      "3-digit sequence", "Mã cơ sở KCB gồm 5 chữ số: 2 chữ số mã tỉnh + 3 chữ số thứ tự",
                      "value.matches('^[0-9]{5}$')")
ORG_ROOT = [
    inv("vn-org-2", "At most one tier (tuyến) coding", "Chỉ được có tối đa một mã tuyến",
        f"type.coding.where(system='{CS}facility-tier').count() <= 1"),
    inv("vn-org-3", "At most one technical level (Law 15/2023) coding",
        "Chỉ được có tối đa một mã cấp chuyên môn kỹ thuật (Luật 15/2023)",
        f"type.coding.where(system='{CS}technical-level').count() <= 1"),
]
profile("vn-organization", "Organization", "Cơ sở khám bệnh, chữa bệnh (VN Telehealth Organization)",
        "Cơ sở KCB, cơ quan quản lý và mạng lưới KCB từ xa: mã cơ sở KCB, tuyến và cấp chuyên môn kỹ thuật, địa chỉ "
        "có mã tỉnh/xã, `partOf` cho trạm y tế thuộc trung tâm y tế.",
        "Health facilities, health authorities and telehealth networks: facility code, tier and technical level, "
        "address with province/commune codes, `partOf` for a station under its health centre.", [
            el("Organization", constraint=ORG_ROOT),
            el("Organization.identifier", slicing=slicing()),
            *ident_slice("Organization", "facilityCode", FACILITY, 0, "1", "Mã cơ sở KCB / facility code",
                        [FACILITY_FORMAT]),
            el("Organization.type", min=1),
            el("Organization.name", min=1),
            *address_elements("Organization"),
            el("Organization.partOf", type=ref("Organization")),
        ])

profile("vn-organization-affiliation", "OrganizationAffiliation",
        "Đăng ký tham gia KCB từ xa với cơ sở tuyến trên (VN Telehealth registration)",
        "Cơ sở tuyến dưới (participatingOrganization) đăng ký tham gia KCB từ xa với bệnh viện tuyến trên "
        "(organization), với các loại dịch vụ từ xa (code) trong mạng lưới (network).",
        "A lower-tier facility (participatingOrganization) registered for telehealth with an upper-tier hospital "
        "(organization), with the telehealth services covered (code) in a network.", [
            el("OrganizationAffiliation", constraint=[inv(
                "vn-aff-1", "A facility cannot be registered with itself", "Cơ sở không thể đăng ký với chính nó",
                "organization.reference != participatingOrganization.reference")]),
            el("OrganizationAffiliation.active", min=1),
            el("OrganizationAffiliation.organization", min=1, type=ref("Organization")),
            el("OrganizationAffiliation.participatingOrganization", min=1, type=ref("Organization")),
            el("OrganizationAffiliation.network", type=ref("Organization")),
            el("OrganizationAffiliation.code", min=1, binding=bind("telehealth-service")),
        ])

NAME_RULE = inv("vn-name-1", "name.text is the full name in Vietnamese order: it starts with the family name",
                "name.text là họ tên đầy đủ theo thứ tự tiếng Việt: bắt đầu bằng họ",
                "name.all(family.exists() implies text.startsWith(family))", severity="warning")
CCCD_FORMAT = inv("vn-cccd-1", "CCCD (personal identification number) is 12 digits",
                  "Số CCCD (số định danh cá nhân) gồm 12 chữ số", "value.matches('^[0-9]{12}$')")
CCCD_BIRTH = inv("vn-cccd-2", "CCCD digits 4–6 must match the birth date and sex (century/sex digit and year)",
                 "Chữ số 4–6 của CCCD phải khớp ngày sinh và giới tính (mã thế kỷ/giới tính và năm sinh)",
                 "value.substring(3, 1) = 2 × (century of %resource.birthDate − 19) + (1 if female) and "
                 "value.substring(4, 2) = year of %resource.birthDate mod 100", rule="cccd-birth-sex")
profile("vn-practitioner", "Practitioner", "Người hành nghề (VN Telehealth Practitioner)",
        "Người hành nghề KCB: họ tên (name.text bắt buộc), số chứng chỉ/giấy phép hành nghề, CCCD, trình độ "
        "chuyên môn (BS CK I/II, ThS.BS, TS.BS …).",
        "Practitioner: name (name.text required), licence number (chứng chỉ / giấy phép hành nghề), CCCD, "
        "qualifications (BS CK I/II, ThS.BS, TS.BS …).", [
            el("Practitioner", constraint=[NAME_RULE]),
            el("Practitioner.identifier", slicing=slicing()),
            *ident_slice("Practitioner", "cccd", NATIONAL_ID, 0, "1", "Số CCCD / personal identification number",
                        [CCCD_FORMAT, CCCD_BIRTH]),
            *ident_slice("Practitioner", "licence", LICENSE, 0, "*",
                         "Số chứng chỉ / giấy phép hành nghề (no fixed national format)"),
            el("Practitioner.name", min=1),
            el("Practitioner.name.text", min=1),
            el("Practitioner.qualification.code", binding=bind("qualification", "extensible")),
        ])

profile("vn-practitioner-role", "PractitionerRole",
        "Vai trò người hành nghề tại cơ sở (VN Telehealth PractitionerRole)",
        "Người hành nghề tại một cơ sở: chuyên khoa, cơ sở, lịch trực từ xa (availableTime, location là phòng ảo) và "
        "các dịch vụ từ xa cung cấp (extension telehealth-service).",
        "A practitioner at a facility: specialty, organization, telehealth availability (availableTime, virtual "
        "room location) and the telehealth services offered (telehealth-service extension).", [
            el("PractitionerRole.extension", slicing=slicing("url")),
            ext_slice("PractitionerRole.extension", "telehealthService", SD + "telehealth-service", 0, "*",
                      "Dịch vụ từ xa cung cấp / telehealth services offered"),
            el("PractitionerRole.practitioner", min=1, type=ref("Practitioner")),
            el("PractitionerRole.organization", min=1, type=ref("Organization")),
            el("PractitionerRole.specialty", binding=bind("specialty", "extensible")),
            el("PractitionerRole.location", type=ref("Location")),
        ])

profile("vn-patient", "Patient", "Người bệnh (VN Telehealth Patient)",
        "Người bệnh: CCCD (12 chữ số, khớp ngày sinh và giới tính), thẻ BHYT (15 ký tự), dân tộc, họ tên theo quy "
        "tắc tiếng Việt (name.text bắt buộc; họ/tên tách riêng), địa chỉ có mã tỉnh/xã.",
        "Patient: CCCD (12 digits, consistent with birth date and sex), BHYT card (15 characters), ethnicity, "
        "Vietnamese name rules (name.text required; family/given split), address with province/commune codes.", [
            el("Patient", constraint=[NAME_RULE]),
            el("Patient.extension", slicing=slicing("url")),
            ext_slice("Patient.extension", "ethnicity", RACE, 0, "1", "Dân tộc / ethnicity (MoH extension-race)"),
            el("Patient.extension:ethnicity.value[x]", min=1, type=[{"code": "CodeableConcept"}],
               binding=bind("ethnicity")),
            el("Patient.identifier", slicing=slicing()),
            *ident_slice("Patient", "cccd", NATIONAL_ID, 0, "1", "Số CCCD / personal identification number", [
                CCCD_FORMAT, CCCD_BIRTH]),
            *ident_slice("Patient", "bhyt", INSURANCE, 0, "1", "Mã thẻ BHYT / health-insurance card number", [
                inv("vn-bhyt-1", "BHYT card number: 2 letters + benefit level 1–5 + 2-digit province + 10 digits",
                    "Mã thẻ BHYT: 2 chữ cái + mức hưởng 1–5 + 2 chữ số mã tỉnh + 10 chữ số",
                    "value.matches('^[A-Z]{2}[1-5][0-9]{12}$')")]),
            el("Patient.name", min=1),
            el("Patient.name.text", min=1),
            el("Patient.gender", min=1),
            el("Patient.birthDate", min=1),
            *address_elements("Patient"),
        ])

SERVICE = "telehealth-service"
profile("vn-schedule", "Schedule", "Lịch tư vấn, KCB từ xa (VN Telehealth Schedule)",
        "Lịch tư vấn KCB từ xa công khai của một người hành nghề hoặc cơ sở, với loại dịch vụ từ xa.",
        "Published teleconsultation schedule of a practitioner or facility, with the telehealth service type.", [
            el("Schedule.active", min=1),
            el("Schedule.serviceType", min=1, binding=bind(SERVICE)),
            el("Schedule.specialty", binding=bind("specialty", "extensible")),
            el("Schedule.actor", type=ref("Practitioner", "PractitionerRole", "Location", "Organization")),
            el("Schedule.planningHorizon", min=1),
        ])

profile("vn-slot", "Slot", "Khung giờ tư vấn, KCB từ xa (VN Telehealth Slot)",
        "Khung giờ đặt được của lịch KCB từ xa: loại dịch vụ, định kỳ/đột xuất.",
        "Bookable time of a telehealth schedule: service type, scheduled/urgent.", [
            el("Slot", constraint=[inv("vn-slot-1", "The slot ends after it starts",
                                       "Khung giờ phải kết thúc sau khi bắt đầu",
                                       "end > start")]),
            el("Slot.serviceType", min=1, binding=bind(SERVICE)),
            el("Slot.appointmentType", min=1, binding=bind("telehealth-urgency")),
        ])

REQUESTING = SD + "requesting-organization"
profile("vn-appointment", "Appointment", "Lịch hẹn KCB từ xa (VN Telehealth Appointment)",
        "Đặt lịch tư vấn/khám/hội chẩn từ xa giữa cơ sở (người hành nghề) yêu cầu và cơ sở tư vấn: loại dịch vụ "
        "(tư vấn, khám, hội chẩn chung/CĐHA/xét nghiệm/phẫu thuật), định kỳ/đột xuất, địa chỉ phòng ảo, lý do.",
        "Teleconsultation booking between a requesting and a consulting facility/practitioner: the kind of service, "
        "scheduled vs urgent, the virtual-service address, and the reason.", [
            el("Appointment", constraint=[
                inv("vn-appt-1", "The reason (reasonCode or reasonReference) is required",
                    "Cần có lý do hẹn (reasonCode hoặc reasonReference)",
                    "reasonCode.exists() or reasonReference.exists()"),
                inv("vn-appt-2", "The appointment ends after it starts", "Lịch hẹn phải kết thúc sau khi bắt đầu",
                    "end > start")]),
            el("Appointment.extension", slicing=slicing("url")),
            ext_slice("Appointment.extension", "requestingOrganization", REQUESTING, 0, "1",
                      "Cơ sở yêu cầu (tuyến dưới) / requesting facility"),
            ext_slice("Appointment.extension", "virtualService", SD + "virtual-service-address", 0, "1",
                      "Địa chỉ phòng khám ảo / virtual meeting address"),
            el("Appointment.serviceType", min=1, binding=bind(SERVICE)),
            el("Appointment.specialty", binding=bind("specialty", "extensible")),
            el("Appointment.appointmentType", min=1, binding=bind("telehealth-urgency")),
            el("Appointment.start", min=1),
            el("Appointment.end", min=1),
            el("Appointment.participant", min=2),
        ])

profile("vn-encounter", "Encounter", "Lượt KCB từ xa (VN Telehealth Encounter)",
        "Lượt tư vấn/khám/hội chẩn từ xa: class VR (ảo); loại = loại dịch vụ từ xa; người tham gia của cả hai cơ sở "
        "với vai trò; chữa bệnh từ xa chỉ cho các bệnh của Thông tư 30/2023 (cảnh báo hoặc lỗi theo cấu hình).",
        "Telehealth encounter: class VR (virtual); type = the telehealth service kind; participants of both "
        "facilities with their roles; remote treatment only for the conditions of Circular 30/2023 (a warning or an "
        "error by configuration).", [
            el("Encounter", constraint=[
                inv("vn-enc-1", "Remote treatment (khám, chữa bệnh từ xa) requires a reason from the Circular "
                    "30/2023 list", "Khám, chữa bệnh từ xa chỉ áp dụng cho bệnh trong danh mục Thông tư 30/2023",
                    f"type.coding.where(system='{CS}{SERVICE}' and code='examination').exists() implies "
                    f"reasonCode.coding.memberOf('{VS}circular30-remote-treatment')",
                    rule="circular30-remote-treatment"),
                inv("vn-enc-2", "Every participant names a person", "Mỗi người tham gia phải có cá nhân cụ thể",
                    "participant.all(individual.exists())")]),
            el("Encounter.extension", slicing=slicing("url")),
            ext_slice("Encounter.extension", "requestingOrganization", REQUESTING, 0, "1",
                      "Cơ sở yêu cầu (tuyến dưới) / requesting facility"),
            el("Encounter.class", patternCoding={"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                                 "code": "VR"}),
            el("Encounter.type", min=1, binding=bind(SERVICE)),
            el("Encounter.subject", min=1, type=ref("Patient")),
            el("Encounter.participant", min=1),
            el("Encounter.period", min=1),
            el("Encounter.serviceProvider", min=1, type=ref("Organization")),
        ])

KIND = f"{CS}prescription-kind"
profile("vn-medication-request", "MedicationRequest", "Đơn thuốc điện tử (VN e-prescription)",
        "Đơn thuốc điện tử: mã đơn thuốc quốc gia `xxxxxyyyyyyy-z` (tiền tố = mã cơ sở KCB của người kê đơn), loại "
        "đơn (c/n/h/y), thuốc theo mã thuốc quốc gia và/hoặc số đăng ký, liều dùng (thời gian, đường dùng), số "
        "lượng và số ngày dùng (≤ 30 ngày trừ khi được đánh dấu), trẻ dưới 72 tháng (cân nặng, người đi kèm); đơn "
        "đã phát hành không sửa tại chỗ (sửa = đơn mới thay thế đơn cũ).",
        "E-prescription: national prescription code `xxxxxyyyyyyy-z` (prefix = the prescriber's facility code), "
        "prescription kind (c/n/h/y), drug by national drug code and/or registration number, dosage with "
        "timing/route, quantity and days' supply (≤ 30 days unless flagged), children under 72 months (weight, "
        "accompanying adult); issued prescriptions are not modified in place (a change is a new one that replaces "
        "the old).", [
            el("MedicationRequest", constraint=[
                inv("vn-rx-2", "The prescription kind (category) matches the last character of the prescription code",
                    "Loại đơn (category) phải khớp ký tự cuối của mã đơn thuốc",
                    f"identifier.where(system='{PRESCRIPTION}').value.substring(13, 1) = "
                    f"category.coding.where(system='{KIND}').code.first()"),
                inv("vn-rx-3", "The drug is identified by its national drug code and/or registration number",
                    "Thuốc phải có mã thuốc quốc gia và/hoặc số đăng ký",
                    f"medication.coding.where(system='{DRUG_CODE}' or system='{DRUG_REG}').exists()"),
                inv("vn-rx-6", "A child under 72 months needs the body weight and the accompanying adult",
                    "Trẻ dưới 72 tháng tuổi cần có cân nặng và tên người đi kèm (cha, mẹ hoặc người giám hộ)",
                    "subject.resolve().birthDate > authoredOn - 72 months implies (extension('patient-weight') and "
                    "extension('accompanying-adult'))", rule="child-under-72-months"),
                inv("vn-rx-7", "An issued prescription is not modified in place: create a new one that replaces it",
                    "Không sửa đơn thuốc đã phát hành: hãy tạo đơn mới thay thế đơn cũ",
                    "%previous.status in ('active' | 'completed') implies only status changes",
                    rule="issued-prescription-immutable"),
            ]),
            el("MedicationRequest.extension", slicing=slicing("url")),
            ext_slice("MedicationRequest.extension", "patientWeight", SD + "patient-weight", 0, "1",
                      "Cân nặng (trẻ dưới 72 tháng) / body weight"),
            ext_slice("MedicationRequest.extension", "accompanyingAdult", SD + "accompanying-adult", 0, "1",
                      "Cha, mẹ hoặc người giám hộ đi kèm / accompanying adult"),
            ext_slice("MedicationRequest.extension", "extendedSupply", SD + "extended-supply", 0, "1",
                      "Đơn kê dài ngày (> 30 ngày) / extended supply"),
            el("MedicationRequest.identifier", slicing=slicing()),
            *ident_slice("MedicationRequest", "prescriptionCode", PRESCRIPTION, 1, "1",
                         "Mã đơn thuốc quốc gia / national prescription code", [
                inv("vn-rx-1", "Prescription code: 5-digit facility code + 7 characters [0-9a-z] + '-' + kind",
                    "Mã đơn thuốc: 5 chữ số mã cơ sở + 7 ký tự [0-9a-z] + '-' + loại đơn",
                    "value.matches('^[0-9]{5}[0-9a-z]{7}-[cnhy]$')"),
                inv("vn-rx-5", "The facility prefix of the prescription code is the requester's facility code",
                    "Tiền tố mã đơn thuốc phải là mã cơ sở KCB của người kê đơn",
                    "value.substring(0, 5) = %resource.requester.resolve().organization.resolve()"
                    ".identifier.where(system='facility-code').value", rule="prescription-facility-prefix")]),
            el("MedicationRequest.category", min=1, binding=bind("prescription-kind")),
            el("MedicationRequest.medication[x]", type=[{"code": "CodeableConcept"}]),
            el("MedicationRequest.subject", type=ref("Patient")),
            el("MedicationRequest.authoredOn", min=1),
            el("MedicationRequest.requester", min=1, type=ref("PractitionerRole", "Organization")),
            el("MedicationRequest.dosageInstruction", min=1),
            el("MedicationRequest.dosageInstruction.timing", min=1),
            el("MedicationRequest.dosageInstruction.route", min=1),
            el("MedicationRequest.dispenseRequest", min=1, constraint=[
                inv("vn-rx-4", "Days' supply is at most 30 days unless the prescription is flagged as extended",
                    "Số ngày dùng thuốc tối đa 30 ngày, trừ đơn được đánh dấu kê dài ngày",
                    "expectedSupplyDuration.value <= 30 or "
                    f"%resource.extension.where(url='{SD}extended-supply' and valueBoolean = true).exists()")]),
            el("MedicationRequest.dispenseRequest.quantity", min=1),
            el("MedicationRequest.dispenseRequest.expectedSupplyDuration", min=1),
            el("MedicationRequest.dispenseRequest.expectedSupplyDuration.system", min=1, fixedUri=UCUM),
            el("MedicationRequest.dispenseRequest.expectedSupplyDuration.code", min=1, fixedCode="d"),
        ])

SECTION = f"{CS}consultation-minutes-section"
ROLE_EXT = SD + "consultation-role"


def _section_present(code: str) -> str:
    return f"section.code.coding.where(system='{SECTION}' and code='{code}').exists()"


profile("vn-consultation-minutes", "Composition", "Biên bản hội chẩn từ xa (VN teleconsultation minutes)",
        "Biên bản hội chẩn từ xa (Thông tư 49/2017/TT-BYT): LOINC 11488-4, loại hội chẩn, người bệnh, lượt KCB từ "
        "xa, cơ sở tư vấn (custodian) và cơ sở yêu cầu, người ký (chủ trì: legal; thư ký, thành viên: "
        "professional; đúng một chủ trì), bốn mục bắt buộc. Đính chính: biên bản mới với relatesTo `replaces`.",
        "Teleconsultation minutes (Circular 49/2017/TT-BYT): LOINC 11488-4, consultation kind, patient, telehealth "
        "encounter, consulting (custodian) and requesting facilities, signers (chair: legal; secretary, members: "
        "professional; exactly one chair), four required sections. A correction is a new Composition with "
        "relatesTo `replaces`.", [
            el("Composition", constraint=[
                inv("vn-cm-1", "Status is final or amended", "Trạng thái phải là final hoặc amended",
                    "status = 'final' or status = 'amended'"),
                inv("vn-cm-2", "Exactly one chair (chủ trì) among the attesters", "Phải có đúng một người chủ trì",
                    f"attester.where(extension.where(url='{ROLE_EXT}').valueCoding.code = 'chair').count() = 1"),
                inv("vn-cm-3", "The chair attests in mode legal, the others in mode professional",
                    "Người chủ trì ký với mode legal, những người khác với mode professional",
                    f"attester.all((extension.where(url='{ROLE_EXT}').valueCoding.code = 'chair') = "
                    "(mode = 'legal'))"),
                inv("vn-cm-4", "The four sections case-summary, discussion, conclusion and treatment-plan are required",
                    "Bắt buộc có bốn mục: tóm tắt bệnh án, diễn biến/kết quả, kết luận, hướng điều trị",
                    " and ".join(_section_present(c) for c in
                                 ("case-summary", "discussion", "conclusion", "treatment-plan"))),
                inv("vn-cm-5", "The conclusion section lists the diagnosis as Condition entries",
                    "Mục kết luận phải liệt kê chẩn đoán (Condition)",
                    f"section.where(code.coding.where(system='{SECTION}' and code='conclusion').exists())"
                    ".all(entry.where(reference.matches('(^|/)Condition/[A-Za-z0-9.-]+$|^#|^urn:uuid:')).exists())"),
                inv("vn-cm-6", "The date carries a time zone", "Thời điểm lập biên bản phải có múi giờ",
                    "date.toString().matches('T.*(Z|[+-][0-9]{2}:[0-9]{2})$')"),
                inv("vn-cm-7", "Section narrative status is generated or additional",
                    "Trạng thái phần văn bản của mục phải là generated hoặc additional",
                    "section.all(text.status = 'generated' or text.status = 'additional')"),
            ]),
            el("Composition.extension", slicing=slicing("url")),
            ext_slice("Composition.extension", "requestingOrganization", REQUESTING, 1, "1",
                      "Cơ sở yêu cầu hội chẩn (tuyến dưới) / requesting facility"),
            el("Composition.language", min=1, fixedCode="vi"),
            el("Composition.type", patternCodeableConcept={"coding": [{"system": LOINC, "code": "11488-4"}]}),
            el("Composition.category", min=1, binding=bind(SERVICE)),
            el("Composition.subject", min=1, type=ref("Patient")),
            el("Composition.encounter", min=1, type=ref("Encounter")),
            el("Composition.author", type=ref("Practitioner", "PractitionerRole", "Organization")),
            el("Composition.attester", min=1),
            el("Composition.attester.extension", slicing=slicing("url")),
            ext_slice("Composition.attester.extension", "consultationRole", ROLE_EXT, 1, "1",
                      "Vai trò trong hội chẩn / consultation role"),
            el("Composition.attester.time", min=1),
            el("Composition.attester.party", min=1, type=ref("Practitioner")),
            el("Composition.custodian", min=1, type=ref("Organization")),
            el("Composition.section", min=4),
            el("Composition.section.title", min=1),
            el("Composition.section.code", min=1, binding=bind("consultation-minutes-section")),
            el("Composition.section.text", min=1),
        ])

# ---------------------------------------------------------------- extensions
# id, title (vi / en), context paths, value type, binding (ValueSet id) or None
EXTENSIONS: list[tuple[str, str, list[str], str, str | None]] = [
    ("address-province", "Tỉnh/thành phố (mã 2 chữ số) / Province code", ["Address"], "Coding", "province"),
    ("address-commune", "Xã/phường/đặc khu (mã 5 chữ số) / Commune code", ["Address"], "Coding", None),
    ("telehealth-service", "Dịch vụ KCB từ xa cung cấp / Telehealth service offered", ["PractitionerRole",
     "HealthcareService"], "Coding", SERVICE),
    ("requesting-organization", "Cơ sở yêu cầu (tuyến dưới) / Requesting (lower-tier) facility",
     ["Composition", "Encounter", "Appointment"], "Reference", None),
    ("consultation-role", "Vai trò trong hội chẩn / Consultation role", ["Composition.attester"], "Coding",
     "consultation-participant-role"),
    ("virtual-service-address", "Địa chỉ phòng khám ảo / Virtual meeting address", ["Appointment"], "url", None),
    ("patient-weight", "Cân nặng của trẻ / Body weight of the child", ["MedicationRequest"], "Quantity", None),
    ("accompanying-adult", "Người đi kèm (cha, mẹ, người giám hộ) / Accompanying adult", ["MedicationRequest"],
     "string", None),
    ("extended-supply", "Đơn kê dài ngày / Extended supply (over 30 days) allowed", ["MedicationRequest"],
     "boolean", None),
    ("artifact-source", "Nguồn của danh mục / Source of a list", ["CodeSystem", "ValueSet", "ConceptMap"],
     "string", None),
    ("verification-status", "Đã đối chiếu văn bản gốc? / Verification status", ["ValueSet.compose.include.concept"],
     "code", None),
    ("circular30-row", "Số thứ tự trong Thông tư 30/2023 / Circular 30 row", ["ValueSet.compose.include.concept"],
     "integer", None),
    ("server-rule", "Luật do máy chủ kiểm tra / Rule checked by the server", ["ElementDefinition.constraint"],
     "code", None),
]


def extension_definition(eid: str, title: str, contexts: list[str], vtype: str, vs: str | None) -> Res:
    value: Res = {"min": 1, "type": [{"code": vtype}]}
    if vs:
        value["binding"] = bind(vs)
    if vtype == "Reference":
        value["type"] = ref("Organization")
    return {
        "resourceType": "StructureDefinition", "id": eid, "url": SD + eid, "version": VERSION,
        "name": "".join(p.capitalize() for p in eid.split("-")), "title": title, "status": "draft", "date": DATE,
        "publisher": PUBLISHER, "description": f"**VI / EN:** {title}", "fhirVersion": "4.0.1", "kind": "complex-type",
        "abstract": False, "context": [{"type": "element", "expression": c} for c in contexts], "type": "Extension",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension", "derivation": "constraint",
        "differential": {"element": [
            el("Extension", short=title),
            el("Extension.extension", max="0"),
            el("Extension.url", fixedUri=SD + eid),
            el("Extension.value[x]", **value),
        ]},
    }


def profile_definition(pid: str, rtype: str, title: str, vi: str, en: str, elements: list[Res]) -> Res:
    return {
        "resourceType": "StructureDefinition", "id": pid, "url": SD + pid, "version": VERSION,
        "name": "".join(p.capitalize() for p in pid.split("-")), "title": title, "status": "draft", "date": DATE,
        "publisher": PUBLISHER, "description": f"**VI:** {vi}\n\n**EN:** {en}", "fhirVersion": "4.0.1",
        "kind": "resource", "abstract": False, "type": rtype,
        "baseDefinition": f"http://hl7.org/fhir/StructureDefinition/{rtype}", "derivation": "constraint",
        "differential": {"element": elements},
    }


def all_definitions() -> list[Res]:
    return [profile_definition(*p) for p in PROFILES] + [extension_definition(*e) for e in EXTENSIONS]


# ---------------------------------------------------------------- search parameters
SP = f"{CANONICAL_BASE}/SearchParameter/"
# code, base types, expression, vi, en
SEARCH_PARAMETERS: list[tuple[str, list[str], str, str, str]] = [
    ("facility-code", ["Organization"], f"Organization.identifier.where(system='{FACILITY}')",
     "Mã cơ sở KCB (5 chữ số)", "Facility code (mã cơ sở KCB, 5 digits)"),
    ("tier", ["Organization"], f"Organization.type.coding.where(system='{CS}facility-tier')",
     "Tuyến (trung ương, tỉnh, huyện, xã)", "Tier (central, provincial, district, commune)"),
    ("technical-level", ["Organization"], f"Organization.type.coding.where(system='{CS}technical-level')",
     "Cấp chuyên môn kỹ thuật (Luật 15/2023)", "Technical level (Law 15/2023)"),
    ("province", ["Organization", "Patient", "Location"],
     f"Organization.address.extension.where(url='{SD}address-province').value | "
     f"Patient.address.extension.where(url='{SD}address-province').value | "
     f"Location.address.extension.where(url='{SD}address-province').value",
     "Mã tỉnh/thành phố (2 chữ số) trong địa chỉ", "Province code (2 digits) in the address"),
    ("cccd", ["Patient", "Practitioner"],
     f"Patient.identifier.where(system='{NATIONAL_ID}') | Practitioner.identifier.where(system='{NATIONAL_ID}')",
     "Số CCCD (định danh cá nhân, 12 chữ số)", "CCCD (personal identification number, 12 digits)"),
    ("bhyt", ["Patient"], f"Patient.identifier.where(system='{INSURANCE}')",
     "Mã thẻ BHYT (15 ký tự)", "BHYT health-insurance card number (15 characters)"),
    ("prescription-code", ["MedicationRequest"], f"MedicationRequest.identifier.where(system='{PRESCRIPTION}')",
     "Mã đơn thuốc điện tử quốc gia", "National e-prescription code"),
    ("ethnicity", ["Patient"], f"Patient.extension.where(url='{RACE}').value",
     "Dân tộc (mã Tổng cục Thống kê)", "Ethnicity (dân tộc, GSO code)"),
]


def search_parameter(code: str, bases: list[str], expression: str, vi: str, en: str) -> Res:
    return {
        "resourceType": "SearchParameter", "id": f"vn-{code}", "url": f"{SP}vn-{code}", "version": VERSION,
        "name": "".join(p.capitalize() for p in code.split("-")), "status": "active", "experimental": False,
        "date": DATE, "publisher": PUBLISHER, "description": f"**VI:** {vi}\n\n**EN:** {en}", "code": code,
        "base": bases, "type": "token", "expression": expression, "xpathUsage": "normal",
    }


# ---------------------------------------------------------------- operation definitions
OD = f"{CANONICAL_BASE}/OperationDefinition/"


def _param(name: str, use: str, mn: int, mx: str, ptype: str | None, doc: str) -> Res:
    p: Res = {"name": name, "use": use, "min": mn, "max": mx, "documentation": doc}
    if ptype:
        p["type"] = ptype
    return p


OPERATION_DEFINITIONS: list[Res] = [
    {"id": "Resource-validate", "name": "Validate", "code": "validate", "resource": ["Resource"], "system": False,
     "type": True, "instance": True, "base": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
     "description": "Kiểm tra tài nguyên theo cấu trúc R4, các hồ sơ (profile) nó khai báo hoặc máy chủ áp dụng "
                    "và luật Việt Nam / Validate against R4 structure, claimed or enforced profiles and the "
                    "Vietnamese rules",
     "parameter": [_param("resource", "in", 0, "1", "Resource", "The resource to validate"),
                   _param("mode", "in", 0, "1", "code", "create | update | delete"),
                   _param("profile", "in", 0, "1", "uri", "Validate against this profile"),
                   _param("return", "out", 1, "1", "OperationOutcome", "All issues; 200 even when invalid")]},
    {"id": "ValueSet-expand", "name": "Expand", "code": "expand", "resource": ["ValueSet"], "system": False,
     "type": True, "instance": True, "base": "http://hl7.org/fhir/OperationDefinition/ValueSet-expand",
     "description": "Liệt kê mã của tập giá trị; filter không phân biệt dấu (nguyen ↔ Nguyễn) / Expand a value "
                    "set; the text filter ignores Vietnamese diacritics",
     "parameter": [_param("url", "in", 0, "1", "uri", "Canonical URL of the ValueSet"),
                   _param("valueSet", "in", 0, "1", "ValueSet", "The ValueSet to expand"),
                   _param("filter", "in", 0, "1", "string", "Accent-insensitive text filter"),
                   _param("count", "in", 0, "1", "integer", "Page size"),
                   _param("offset", "in", 0, "1", "integer", "Start of the page"),
                   _param("displayLanguage", "in", 0, "1", "code", "vi (default) or en"),
                   _param("return", "out", 1, "1", "ValueSet", "The ValueSet with its expansion")]},
    {"id": "ValueSet-validate-code", "name": "ValidateCode", "code": "validate-code", "resource": ["ValueSet"],
     "system": False, "type": True, "instance": True,
     "base": "http://hl7.org/fhir/OperationDefinition/ValueSet-validate-code",
     "description": "Mã có thuộc tập giá trị không / Is a code in a value set",
     "parameter": [_param("url", "in", 0, "1", "uri", "Canonical URL of the ValueSet"),
                   _param("code", "in", 0, "1", "code", "The code"),
                   _param("system", "in", 0, "1", "uri", "Its system"),
                   _param("display", "in", 0, "1", "string", "A display to check"),
                   _param("coding", "in", 0, "1", "Coding", "A Coding"),
                   _param("codeableConcept", "in", 0, "1", "CodeableConcept", "A CodeableConcept"),
                   _param("result", "out", 1, "1", "boolean", "True if valid"),
                   _param("message", "out", 0, "1", "string", "Why not / warnings"),
                   _param("display", "out", 0, "1", "string", "The display of the code")]},
    {"id": "CodeSystem-lookup", "name": "Lookup", "code": "lookup", "resource": ["CodeSystem"], "system": False,
     "type": True, "instance": False, "base": "http://hl7.org/fhir/OperationDefinition/CodeSystem-lookup",
     "description": "Tra cứu một mã / Look up a code",
     "parameter": [_param("code", "in", 0, "1", "code", "The code"),
                   _param("system", "in", 0, "1", "uri", "Its system"),
                   _param("coding", "in", 0, "1", "Coding", "A Coding"),
                   _param("property", "in", 0, "*", "code", "Properties to return"),
                   _param("name", "out", 1, "1", "string", "Name of the code system"),
                   _param("version", "out", 0, "1", "string", "Its version"),
                   _param("display", "out", 1, "1", "string", "The display"),
                   _param("designation", "out", 0, "*", None, "Other designations"),
                   _param("property", "out", 0, "*", None, "Properties")]},
    # Signed consultation minutes (#6): fhir_server/operations/document.py and signatures.py.
    {"id": "Composition-document", "name": "Document", "code": "document", "resource": ["Composition"],
     "system": False, "type": True, "instance": True,
     "base": "http://hl7.org/fhir/OperationDefinition/Composition-document",
     "description": "Lập Bundle tài liệu (type document, Composition đứng đầu, mọi tài nguyên được tham chiếu); "
                    "persist=true lưu Bundle và cần POST / Assemble the document Bundle (Composition first, every "
                    "referenced resource); persist=true stores it and needs POST",
     "parameter": [_param("id", "in", 0, "1", "uri", "The Composition id (type-level call)"),
                   _param("persist", "in", 0, "1", "boolean", "Store the Bundle (POST only; GET → 405)"),
                   _param("return", "out", 1, "1", "Bundle", "The document Bundle")]},
    {"id": "Bundle-sign", "name": "Sign", "code": "sign", "resource": ["Bundle"], "system": False,
     "type": False, "instance": True, "affectsState": True,
     "description": "Ký số Bundle tài liệu bằng khóa trong kho khóa của máy chủ (JWS tách rời, RFC 8785); mỗi lần ký "
                    "lưu một Provenance / Sign a stored document Bundle with a key of the server's key store "
                    "(detached JWS over the RFC 8785 canonical form); every signing stores a Provenance",
     "parameter": [_param("key", "in", 1, "1", "string", "Key id in the server's key store"),
                   _param("type", "in", 0, "1", "string",
                          "author | coauthor | co-participant | verification | validation | witness | review, "
                          "or an ASTM E1762 code (default coauthor; author when final)"),
                   _param("final", "in", 0, "1", "boolean",
                          "The chair's or verification signature: goes into Bundle.signature; the Bundle is "
                          "immutable afterwards"),
                   _param("who", "in", 0, "1", "Reference", "The signer (default the key's owner)"),
                   _param("provenance", "out", 1, "1", "Provenance", "The Provenance recording the signing"),
                   _param("bundle", "out", 1, "1", "Bundle", "The document Bundle (with Bundle.signature if final)")]},
    {"id": "Bundle-verify-signature", "name": "VerifySignature", "code": "verify-signature", "resource": ["Bundle"],
     "system": True, "type": True, "instance": True,
     "description": "Kiểm tra mọi chữ ký của Bundle tài liệu (Bundle.signature và các Provenance đồng ký): thuật toán, "
                    "nội dung, chuỗi chứng thư, OCSP/CRL / Verify every signature of a document Bundle "
                    "(Bundle.signature and co-signers' Provenances): algorithm, content, certificate chain, "
                    "OCSP/CRL status",
     "parameter": [_param("resource", "in", 0, "1", "Bundle",
                          "A document Bundle, or a searchset/collection holding one and its Provenances "
                          "(system and type level; the instance level reads the stored Bundle)"),
                   _param("valid", "out", 1, "1", "boolean", "True only when every signature is valid"),
                   _param("document", "out", 0, "1", "Identifier", "Bundle.identifier"),
                   _param("title", "out", 0, "1", "string", "The Composition title"),
                   _param("signature", "out", 1, "*", None,
                          "One per signature: valid, status, location, reason (code, message), type, who, signer, "
                          "algorithm, key, certificateSubject, certificateIssuer, certificateSerial, revocation, "
                          "signingTime, certificateNotBefore, certificateNotAfter, chain")
                   | {"part": [_param("valid", "out", 1, "1", "boolean", "This signature is valid"),
                               _param("status", "out", 1, "1", "code", "valid | invalid | indeterminate"),
                               _param("location", "out", 1, "1", "string", "FHIRPath of the Signature"),
                               _param("signer", "out", 0, "1", "string", "Certificate subject CN"),
                               _param("certificateSerial", "out", 0, "1", "string", "Serial (hex)"),
                               _param("certificateIssuer", "out", 0, "1", "string", "Issuer DN"),
                               _param("signingTime", "out", 0, "1", "instant", "Signing time")]}]},
]


def operation_definition(d: Res) -> Res:
    return {"resourceType": "OperationDefinition", "id": d["id"], "url": OD + d["id"], "version": VERSION,
            "name": d["name"], "status": "active", "kind": "operation", "date": DATE, "publisher": PUBLISHER,
            "affectsState": False, **{k: v for k, v in d.items() if k not in ("id", "name")}}


# ---------------------------------------------------------------- base definitions
def _package_dir() -> Path:
    if os.environ.get("R4_PACKAGE_DIR"):
        return Path(os.environ["R4_PACKAGE_DIR"])
    target = CACHE / "hl7.fhir.r4.examples-4.0.1"
    if not (target / "package" / "StructureDefinition-Patient.json").exists():
        target.mkdir(parents=True, exist_ok=True)
        out = subprocess.run(["npm", "pack", R4_PACKAGE, "--json"], cwd=target, check=True, capture_output=True,
                             text=True)
        tgz = target / json.loads(out.stdout)[0]["filename"]
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/StructureDefinition-")
                       or m.name == "package/package.json"]
            tar.extractall(target, members=members, filter="data")
        (target / "sha256").write_text(hashlib.sha256(tgz.read_bytes()).hexdigest())
        tgz.unlink()
    return target / "package" if (target / "package").exists() else target


@cache
def load_base(type_name: str) -> Res:
    data: Res = json.loads((_package_dir() / f"StructureDefinition-{type_name}.json").read_text(encoding="utf-8"))
    return data


def main() -> None:
    for sd in all_definitions():
        sd["snapshot"] = {"element": generate_snapshot(sd, load_base)}
        (HERE / f"StructureDefinition-{sd['id']}.json").write_text(
            json.dumps(sd, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        print(f"StructureDefinition-{sd['id']}.json: {len(sd['differential']['element'])} differential, "
              f"{len(sd['snapshot']['element'])} snapshot elements")
    for sp in SEARCH_PARAMETERS:
        res = search_parameter(*sp)
        (HERE / f"SearchParameter-{res['id']}.json").write_text(json.dumps(res, ensure_ascii=False, indent=1) + "\n",
                                                                 encoding="utf-8")
    for od in OPERATION_DEFINITIONS:
        res = operation_definition(od)
        (HERE / f"OperationDefinition-{res['id']}.json").write_text(
            json.dumps(res, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(SEARCH_PARAMETERS)} SearchParameters, {len(OPERATION_DEFINITIONS)} OperationDefinitions")
    sha = (_package_dir().parent / "sha256")
    digest = sha.read_text().strip() if sha.exists() else "(R4_PACKAGE_DIR given)"
    (HERE / "SOURCES.md").write_text(
        "# Sources of the profiles\n\n"
        "Generated by `python -m profiles.build` (differentials authored in `profiles/build.py`; snapshots "
        "generated by `profiles/snapshot.py`).\n\n"
        "| base | tarball sha256 | licence |\n|---|---|---|\n"
        f"| `{R4_PACKAGE}` (the R4 core StructureDefinitions; `hl7.fhir.r4.core@4.0.1` is not on the npm "
        f"registry) | `{digest}` | CC0 (HL7 FHIR) |\n\n"
        "Identifier systems and extensions reused from the Ministry of Health draft VN Core "
        "(`http://fhir.ehealth.gov.vn/core`): see `terminology/README.md`.\n", encoding="utf-8")


if __name__ == "__main__":
    main()
