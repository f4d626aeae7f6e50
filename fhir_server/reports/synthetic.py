"""Seeded synthetic telehealth activity over the seed facilities (tests and bench only).

Organizations and OrganizationAffiliations come from fhir_server/demo_data (Kon Tum pilot
stations and support hospitals, seed 003; Đồng Nai facilities and their upper-tier
registrations, seed 001). On top: doctors (Practitioner + PractitionerRole per facility),
patients, and per quarter Appointments, Encounters (class VR, type telehealth-service),
MedicationRequests, consultation minutes (Composition, CONTRACTS.md C) and a few reported
MeasureReports. Everything generated is tagged `data-origin#synthetic`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from fhir_server.reports.definitions import (
    CANONICAL,
    COST_EXT,
    REQUESTING_ORG_EXT,
    TELEHEALTH_SERVICE,
    V3_ACTCODE,
)
from fhir_server.search.date import LOCAL_TZ

DEMO = Path(__file__).resolve().parents[1] / "demo_data"
SYNTHETIC = {"tag": [{"system": f"{CANONICAL}/CodeSystem/data-origin", "code": "synthetic"}]}
CONSULT_KINDS = ("consultation-general", "consultation-imaging", "consultation-laboratory", "consultation-surgery")


def demo_resources(*names: str) -> list[dict[str, Any]]:
    out = []
    for name in names:
        bundle = orjson.loads((DEMO / name).read_bytes())
        out += [e["resource"] for e in bundle["entry"]]
    return out


def seed_directory() -> list[dict[str, Any]]:
    """The seed Organizations and OrganizationAffiliations (Đồng Nai + Kon Tum)."""
    return [r for r in demo_resources("01-dong-nai-organizations.json", "02-dong-nai-affiliations.json",
                                      "04-kon-tum.json")
            if r["resourceType"] in ("Organization", "OrganizationAffiliation")]


def _ref(res_type: str, res_id: str) -> dict[str, str]:
    return {"reference": f"{res_type}/{res_id}"}


def _tier(org: dict[str, Any]) -> str | None:
    return next((c["code"] for t in org.get("type", []) for c in t.get("coding", [])
                 if c.get("system", "").endswith("/facility-tier")), None)


def quarter_start(year: int, q: int) -> datetime:
    return datetime(year, 3 * (q - 1) + 1, 1, tzinfo=LOCAL_TZ)


@dataclass
class Generated:
    resources: list[dict[str, Any]] = field(default_factory=list)

    def of(self, res_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["resourceType"] == res_type]


class Generator:
    """`per_quarter` encounters per lower-tier facility and quarter, roughly."""

    def __init__(self, seed: int = 2024, quarters: tuple[tuple[int, int], ...] = ((2024, 1), (2024, 2), (2024, 3),
                                                                                 (2024, 4)),
                 per_quarter: int = 6) -> None:
        self.rnd = random.Random(seed)
        self.quarters = quarters
        self.per_quarter = per_quarter
        self.directory = seed_directory()
        self.orgs = {r["id"]: r for r in self.directory if r["resourceType"] == "Organization"}
        # Synthetic: the Kon Tum district health centres registered with the provincial hospital
        # for consultations (seed 003 names the hospital as support but lists no registration).
        for org in sorted(self.orgs.values(), key=lambda o: o["id"]):
            if org["id"].startswith("org-ttyt-") and _tier(org) == "district" and org.get("partOf", {}).get(
                    "reference") == "Organization/org-syt-kon-tum":
                self.directory.append({
                    "resourceType": "OrganizationAffiliation", "id": f"aff-syn-{org['id'][4:]}--bvdk-tinh-kon-tum",
                    "meta": SYNTHETIC, "active": True, "organization": _ref("Organization", "org-bvdk-tinh-kon-tum"),
                    "participatingOrganization": _ref("Organization", org["id"]),
                    "code": [{"coding": [{"system": TELEHEALTH_SERVICE, "code": "consultation"}]}]})
        self.affs = [r for r in self.directory if r["resourceType"] == "OrganizationAffiliation"]
        self.roles: dict[str, list[str]] = {}  # org id → PractitionerRole ids
        self.n = 0

    def _id(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n:06d}"

    # -- directory -----------------------------------------------------------------------
    def lower_facilities(self) -> list[str]:
        return sorted({a["participatingOrganization"]["reference"].split("/")[1] for a in self.affs})

    def uppers_of(self, org_id: str, service: str) -> list[str]:
        out = []
        for a in self.affs:
            if a["participatingOrganization"]["reference"] != f"Organization/{org_id}":
                continue
            codes = {c["code"] for cc in a.get("code", []) for c in cc.get("coding", [])}
            if service in codes or (service.startswith("consultation") and "consultation" in codes):
                out.append(a["organization"]["reference"].split("/")[1])
        return sorted(set(out))

    def staff(self) -> Iterator[dict[str, Any]]:
        family = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Y", "A", "Đinh"]
        given = ["Văn An", "Thị Bình", "Minh Châu", "Hữu Dũng", "Thị Hà", "Quang Huy", "Thị Lan", "Văn Phúc"]
        involved = set(self.lower_facilities())
        for a in self.affs:
            involved.add(a["organization"]["reference"].split("/")[1])
        for org_id in sorted(involved):
            for _ in range(2 if _tier(self.orgs.get(org_id, {})) == "commune" else 3):
                pid = self._id("prac-syn")
                name = f"{self.rnd.choice(family)} {self.rnd.choice(given)}"
                yield {"resourceType": "Practitioner", "id": pid, "meta": SYNTHETIC, "active": True,
                       "name": [{"text": f"BS {name}", "family": name.split()[0], "given": name.split()[1:]}]}
                rid = self._id("prole-syn")
                self.roles.setdefault(org_id, []).append(rid)
                yield {"resourceType": "PractitionerRole", "id": rid, "meta": SYNTHETIC, "active": True,
                       "practitioner": _ref("Practitioner", pid), "organization": _ref("Organization", org_id)}

    # -- activity ----------------------------------------------------------------------------
    def encounter(self, kind: str, provider: str, requester: str | None, patient: str, start: datetime,
                  appointment: str | None, status: str = "finished", cost: int | None = None) -> dict[str, Any]:
        parts = self.rnd.sample(self.roles[provider], k=min(len(self.roles[provider]), self.rnd.randint(1, 2)))
        if requester:
            parts += self.rnd.sample(self.roles[requester], k=1)
        ext: list[dict[str, Any]] = []
        if requester:
            ext.append({"url": REQUESTING_ORG_EXT, "valueReference": _ref("Organization", requester)})
        if cost is not None:
            ext.append({"url": COST_EXT, "valueMoney": {"value": cost, "currency": "VND"}})
        enc: dict[str, Any] = {
            "resourceType": "Encounter", "id": self._id("enc-syn"), "meta": SYNTHETIC, "status": status,
            "class": {"system": V3_ACTCODE, "code": "VR", "display": "virtual"},
            "type": [{"coding": [{"system": TELEHEALTH_SERVICE, "code": kind}]}],
            "subject": _ref("Patient", patient),
            "participant": [{"individual": _ref("PractitionerRole", r)} for r in parts],
            "period": {"start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()},
            "serviceProvider": _ref("Organization", provider),
        }
        if appointment:
            enc["appointment"] = [_ref("Appointment", appointment)]
        if ext:
            enc["extension"] = ext
        return enc

    def appointment(self, start: datetime, patient: str) -> dict[str, Any]:
        return {"resourceType": "Appointment", "id": self._id("appt-syn"), "meta": SYNTHETIC, "status": "fulfilled",
                "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat(),
                "participant": [{"actor": _ref("Patient", patient), "status": "accepted"}]}

    def prescription(self, enc: dict[str, Any], status: str = "active") -> dict[str, Any]:
        return {"resourceType": "MedicationRequest", "id": self._id("mr-syn"), "meta": SYNTHETIC, "status": status,
                "intent": "order", "subject": enc["subject"], "encounter": _ref("Encounter", enc["id"]),
                "medicationCodeableConcept": {"text": "Paracetamol 500mg"},
                "authoredOn": enc["period"]["start"]}

    def minutes(self, enc: dict[str, Any], requester: str, status: str = "final") -> dict[str, Any]:
        kind = enc["type"][0]["coding"][0]["code"]
        prac = {"reference": "Practitioner/prac-x"}
        div = '<div xmlns="http://www.w3.org/1999/xhtml">…</div>'
        sections = [("case-summary", "Tóm tắt bệnh án"), ("discussion", "Diễn biến, kết quả hội chẩn"),
                    ("conclusion", "Kết luận, chẩn đoán"), ("treatment-plan", "Hướng điều trị")]
        return {
            "resourceType": "Composition", "id": self._id("minutes-syn"), "meta": SYNTHETIC, "status": status,
            "language": "vi",
            "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}],
                     "text": "Biên bản hội chẩn từ xa"},
            "category": [{"coding": [{"system": TELEHEALTH_SERVICE, "code": kind}]}],
            "subject": enc["subject"], "encounter": _ref("Encounter", enc["id"]), "date": enc["period"]["end"],
            "title": "Biên bản hội chẩn từ xa", "author": [enc["serviceProvider"]],
            "custodian": enc["serviceProvider"],
            "extension": [{"url": REQUESTING_ORG_EXT, "valueReference": _ref("Organization", requester)}],
            "attester": [{"mode": "legal", "time": enc["period"]["end"], "party": prac}],
            "section": [{"title": t, "code": {"coding": [{"system": f"{CANONICAL}/CodeSystem/consultation-minutes"
                                                                   "-section", "code": c}]},
                         "text": {"status": "generated", "div": div}} for c, t in sections],
        }

    def reported(self, measure: str, reporter: str, year: int, q: int, count: int) -> dict[str, Any]:
        start = quarter_start(year, q)
        end = quarter_start(year + (q == 4), q % 4 + 1) - timedelta(days=1)
        return {"resourceType": "MeasureReport", "id": self._id("mrep-syn"), "meta": SYNTHETIC,
                "status": "complete", "type": "data-collection", "measure": f"{CANONICAL}/Measure/{measure}",
                "reporter": _ref("Organization", reporter), "date": end.date().isoformat(),
                "period": {"start": start.date().isoformat(), "end": end.date().isoformat()},
                "group": [{"population": [{"code": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/measure-population",
                    "code": "initial-population"}]}, "count": count}]}]}

    def generate(self) -> Generated:
        out = Generated(resources=list(self.directory))
        out.resources += list(self.staff())
        patients = []
        for _ in range(40):
            pid = self._id("pat-syn")
            patients.append(pid)
            out.resources.append({"resourceType": "Patient", "id": pid, "meta": SYNTHETIC,
                                  "name": [{"text": f"Bệnh nhân {pid}"}]})
        rnd = self.rnd
        lower = [o for o in self.lower_facilities() if o in self.roles]
        for year, q in self.quarters:
            qs = quarter_start(year, q)
            for org in lower:
                for _ in range(rnd.randint(self.per_quarter // 2, self.per_quarter)):
                    start = qs + timedelta(days=rnd.randint(0, 89), hours=rnd.randint(7, 16))
                    patient = rnd.choice(patients)
                    kind = rnd.choice(("advice", "advice", "examination", "examination", "consultation"))
                    if kind == "consultation":
                        kind = rnd.choice(CONSULT_KINDS)
                    uppers = self.uppers_of(org, kind)
                    referred = kind.startswith("consultation") or (uppers and rnd.random() < 0.4)
                    if referred and not uppers:
                        continue
                    provider = rnd.choice(uppers) if referred else org
                    if provider not in self.roles:
                        continue
                    appt = None
                    if rnd.random() < 0.7:
                        a = self.appointment(start, patient)
                        out.resources.append(a)
                        appt = a["id"]
                    status = "cancelled" if rnd.random() < 0.08 else "finished"
                    cost = rnd.choice((None, 150000, 300000)) if kind.startswith("consultation") else None
                    enc = self.encounter(kind, provider, org if referred else None, patient, start, appt, status,
                                         cost)
                    out.resources.append(enc)
                    if appt and rnd.random() < 0.3:  # a second case in the same session
                        enc2 = self.encounter(kind, provider, org if referred else None, rnd.choice(patients),
                                              start + timedelta(minutes=30), appt, "finished", None)
                        out.resources.append(enc2)
                    if kind == "examination" and rnd.random() < 0.6:
                        out.resources.append(self.prescription(enc, rnd.choice(("active", "completed",
                                                                                "entered-in-error"))))
                    if kind.startswith("consultation") and rnd.random() < 0.8:
                        out.resources.append(self.minutes(enc, org, rnd.choice(("final", "final", "preliminary"))))
            for org in [o for o in lower if _tier(self.orgs[o]) == "commune"][:5]:
                out.resources.append(self.reported("kt-09-app-install-support", org, year, q, rnd.randint(5, 60)))
        # Noise that must never be counted: a non-virtual encounter, an encounter of another type system.
        out.resources.append({**self.encounter("advice", lower[0], None, patients[0], quarter_start(2024, 2),
                                               None), "class": {"system": V3_ACTCODE, "code": "AMB"}})
        return out


def transaction(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources]}
