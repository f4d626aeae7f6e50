"""Hand count of the telehealth indicators, written independently of fhir_server.reports.

Plain Python over the generated resources, following the definitions in
fhir_server/reports/README.md literally: no SQL, no shared code with the implementation
except the URLs of the codes.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

VN = timezone(timedelta(hours=7))
V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SERVICE = "http://fhir.vntelehealth.org/r4/CodeSystem/telehealth-service"
TIER = "http://fhir.vntelehealth.org/r4/CodeSystem/facility-tier"
PROVINCE = "http://fhir.vntelehealth.org/r4/StructureDefinition/address-province"
REQ = "http://fhir.vntelehealth.org/r4/StructureDefinition/requesting-organization"
COST = "http://fhir.vntelehealth.org/r4/StructureDefinition/telehealth-cost"
CONSULTS = {"consultation", "consultation-general", "consultation-imaging", "consultation-laboratory",
            "consultation-surgery"}


def ref_id(ref: Any, rtype: str) -> str | None:
    r = (ref or {}).get("reference", "")
    return r.split("/")[1] if r.startswith(rtype + "/") else None


class Hand:
    def __init__(self, resources: list[dict[str, Any]], population: dict[str, int]) -> None:
        self.res = resources
        self.population = population
        self.orgs = {r["id"]: r for r in resources if r["resourceType"] == "Organization"}
        self.roles = {r["id"]: r for r in resources if r["resourceType"] == "PractitionerRole"}

    # -- directory facts ----------------------------------------------------------------
    def tier(self, org_id: str | None) -> str | None:
        org = self.orgs.get(org_id or "")
        if not org:
            return None
        for t in org.get("type", []):
            for c in t.get("coding", []):
                if c["system"] == TIER:
                    return str(c["code"])
        return None

    def province(self, org_id: str) -> str | None:
        for a in self.orgs[org_id].get("address", []):
            for e in a.get("extension", []):
                if e["url"] == PROVINCE:
                    return str(e["valueCoding"]["code"])
        return None

    def in_province(self, code: str) -> set[str]:
        return {o for o in self.orgs if self.province(o) == code}

    def catchment(self, org_id: str) -> set[str]:
        out = {org_id}
        while True:
            more = {o for o, r in self.orgs.items() if ref_id(r.get("partOf"), "Organization") in out} - out
            if not more:
                break
            out |= more
        for r in self.res:
            if r["resourceType"] == "OrganizationAffiliation" and r.get("active", True) and ref_id(
                    r.get("organization"), "Organization") == org_id:
                out.add(ref_id(r["participatingOrganization"], "Organization"))  # type: ignore[arg-type]
        return out

    # -- encounters -------------------------------------------------------------------------
    def encounters(self, start: date, end: date, scope: set[str] | None) -> list[dict[str, Any]]:
        lo = datetime(start.year, start.month, start.day, tzinfo=VN)
        hi = datetime(end.year, end.month, end.day, tzinfo=VN) + timedelta(days=1)
        out = []
        for r in self.res:
            if r["resourceType"] != "Encounter":
                continue
            if r.get("class", {}).get("system") != V3 or r["class"].get("code") != "VR":
                continue
            if r.get("status") in ("cancelled", "entered-in-error"):
                continue
            kinds = [c["code"] for t in r.get("type", []) for c in t["coding"] if c["system"] == SERVICE]
            if not kinds:
                continue
            began = datetime.fromisoformat(r["period"]["start"])
            if not lo <= began < hi:
                continue
            provider = ref_id(r.get("serviceProvider"), "Organization")
            requester = next((ref_id(e["valueReference"], "Organization") for e in r.get("extension", [])
                              if e["url"] == REQ), None)
            if scope is not None and provider not in scope and requester not in scope:
                continue
            out.append({"r": r, "kind": kinds[0], "provider": provider, "requester": requester,
                        "referred": requester is not None and requester != provider,
                        "facility": requester if requester is not None and requester != provider else provider,
                        "start": began})
        return out

    def prescribed(self, enc_id: str) -> bool:
        return any(r["resourceType"] == "MedicationRequest" and ref_id(r.get("encounter"), "Encounter") == enc_id
                   and r["status"] not in ("cancelled", "entered-in-error") for r in self.res)

    def with_minutes(self, enc_id: str) -> bool:
        return any(r["resourceType"] == "Composition" and ref_id(r.get("encounter"), "Encounter") == enc_id
                   and r["status"] in ("final", "amended")
                   and any(c["code"] == "11488-4" for c in r["type"]["coding"]) for r in self.res)

    # -- the indicators ----------------------------------------------------------------------
    def figures(self, encs: list[dict[str, Any]], scope: set[str] | None, start: date, end: date
                ) -> dict[tuple[str, str], float | int | None]:
        """(measure id, group code) → the hand-counted value."""
        out: dict[tuple[str, str], float | int | None] = {}
        stations = set()
        doctors = set()
        for e in encs:
            for o in (e["provider"], e["requester"]):
                if o and self.tier(o) == "commune" and (scope is None or o in scope):
                    stations.add(o)
            for p in e["r"].get("participant", []):
                role = ref_id(p.get("individual"), "PractitionerRole")
                if role:
                    doctors.add(ref_id(self.roles[role]["practitioner"], "Practitioner"))
        out[("kt-01-stations", "count")] = len(stations)
        out[("kt-02-doctors", "count")] = len(doctors)
        for row, kind in (("kt-04", "advice"), ("kt-05", "examination")):
            sel = [e for e in encs if e["kind"] == kind]
            name = "advice" if kind == "advice" else "examination"
            for suffix, subset in (("", sel), ("-1", [e for e in sel if not e["referred"]]),
                                   ("-2", [e for e in sel if e["referred"]])):
                mid = f"{row}{suffix}-{name}" + {"": "", "-1": "-local", "-2": "-referred"}[suffix]
                out[(f"kt{mid[2:]}", "count")] = len(subset)
                if kind == "examination":
                    out[(f"kt{mid[2:]}", "eprescribed")] = sum(1 for e in subset if self.prescribed(e["r"]["id"]))
        for mid, kind in (("kt-06-advice-per-population", "advice"), ("kt-07-examination-per-population",
                                                                       "examination")):
            communes = [o for o in self.population if o in self.orgs and (scope is None or o in scope)]
            num = sum(1 for e in encs if e["kind"] == kind and e["facility"] in communes)
            den = sum(self.population[o] for o in communes)
            out[(mid, "rate")] = round(num * 1000 / den, 3) if den else None
        total = 0
        lo, hi = start, end
        for r in self.res:
            if r["resourceType"] == "MeasureReport" and r["measure"].endswith("/kt-09-app-install-support") \
                    and r["type"] == "data-collection" and r["status"] == "complete":
                began = date.fromisoformat(r["period"]["start"])
                reporter = ref_id(r["reporter"], "Organization")
                if lo <= began <= hi and (scope is None or reporter in scope):
                    total += r["group"][0]["population"][0]["count"]
        out[("kt-09-app-install-support", "count")] = total
        consults = [e for e in encs if e["kind"] in CONSULTS and e["referred"]]
        out[("kt-10-consultation-upper-tier", "count")] = sum(
            1 for e in consults if self.tier(e["requester"]) != "commune")
        out[("kt-11-consultation-commune", "count")] = sum(
            1 for e in consults if self.tier(e["requester"]) == "commune")
        tables = {"dn-2-advice": {"advice"}, "dn-3-consultation": {"consultation", "consultation-general"},
                  "dn-4-imaging": {"consultation-imaging"}, "dn-5-laboratory": {"consultation-laboratory"},
                  "dn-6-surgery": {"consultation-surgery"}}
        for mid, kinds in tables.items():
            sel = [e for e in encs if e["kind"] in kinds]
            sessions = set()
            upper = lower = 0
            costs = []
            for e in sel:
                appts = [ref_id(a, "Appointment") for a in e["r"].get("appointment", [])]
                sessions.add((appts[0], e["kind"], e["provider"], e["requester"]) if appts else ("enc", e["r"]["id"]))
                for p in e["r"].get("participant", []):
                    role = ref_id(p["individual"], "PractitionerRole")
                    org = ref_id(self.roles[role]["organization"], "Organization") if role else None
                    if e["referred"] and org != e["requester"]:
                        upper += 1
                    else:
                        lower += 1
                for x in e["r"].get("extension", []):
                    if x["url"] == COST:
                        costs.append(x["valueMoney"]["value"])
            out[(mid, "sessions")] = len(sessions)
            out[(mid, "upper-participants")] = upper
            out[(mid, "lower-participants")] = lower
            out[(mid, "cases")] = len(sel)
            out[(mid, "cost")] = sum(costs) if costs else None
            if mid != "dn-2-advice":
                out[(mid, "minutes")] = sum(1 for e in sel if self.with_minutes(e["r"]["id"]))
        return out
