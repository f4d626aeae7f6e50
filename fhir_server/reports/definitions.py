"""Codes, canonical URLs and the indicator catalogue (Measure files + commune population table)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from terminology.loader import CANONICAL_BASE

CANONICAL = CANONICAL_BASE
ROOT = Path(__file__).resolve().parents[2]
MEASURES_DIR = ROOT / "terminology" / "measures"
POPULATION_CSV = MEASURES_DIR / "commune-population.csv"
SEED_KT = "003_2ffd77feb72a25a3"
SEED_DN = "001_4baef2f7a8d05b1a"
SOURCE_EXT = f"{CANONICAL}/StructureDefinition/artifact-source"
# R4 binds Expression.language to text/cql | text/fhirpath | application/x-fhir-query; the computation
# keys have the query form `metric?param=value` (README "Computation keys"), not a REST search.
COMPUTATION_LANGUAGE = "application/x-fhir-query"

V3_ACTCODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
TELEHEALTH_SERVICE = f"{CANONICAL}/CodeSystem/telehealth-service"
FACILITY_TIER = f"{CANONICAL}/CodeSystem/facility-tier"
PROVINCE_EXT = f"{CANONICAL}/StructureDefinition/address-province"
REQUESTING_ORG_EXT = f"{CANONICAL}/StructureDefinition/requesting-organization"
COST_EXT = f"{CANONICAL}/StructureDefinition/telehealth-cost"
CONSULT_NOTE = ("http://loinc.org", "11488-4")

KINDS = ("advice", "examination", "consultation", "consultation-general", "consultation-imaging",
         "consultation-laboratory", "consultation-surgery")
EXCLUDED_STATUSES = ("cancelled", "entered-in-error")
TIER_RANK = {"commune": 1, "district": 2, "provincial": 3, "central": 4}


@dataclass(frozen=True)
class Criteria:
    metric: str  # stations | doctors | cases | sessions | upper-participants | lower-participants | cost |
    #              eprescribed | rate | reported
    kinds: tuple[str, ...] = ()
    origin: str | None = None  # local | referred
    requester_tier: str | None = None  # commune | other
    part: str | None = None  # numerator | denominator (rate)

    @classmethod
    def parse(cls, expression: str) -> Criteria:
        metric, _, query = expression.partition("?")
        q = dict(parse_qsl(query))
        kinds = tuple(k for k in q.get("kind", "").split(",") if k)
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds {unknown} in {expression}")
        return cls(metric, kinds, q.get("origin"), q.get("requester-tier"), q.get("part"))


@dataclass(frozen=True)
class Indicator:
    measure: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.measure["id"])

    @property
    def url(self) -> str:
        return str(self.measure["url"])

    def _ext(self, name: str) -> str:
        for e in self.measure.get("extension", []):
            if e["url"].endswith("/" + name):
                return str(e.get("valueString", ""))
        return ""

    @property
    def row(self) -> str:
        return self._ext("report-row")

    @property
    def unit(self) -> str:
        return self._ext("report-unit")

    @property
    def scoring(self) -> str:
        return str(self.measure["scoring"]["coding"][0]["code"])

    def groups(self) -> list[tuple[str, str, dict[str, Criteria]]]:
        """(group code, Vietnamese text, {population code: criteria})."""
        out = []
        for g in self.measure["group"]:
            pops = {p["code"]["coding"][0]["code"]: Criteria.parse(p["criteria"]["expression"])
                    for p in g["population"]}
            out.append((g["code"]["coding"][0]["code"], g["code"].get("text", ""), pops))
        return out


def _sort_key(ind: Indicator) -> tuple[int, tuple[int, ...]]:
    numbers = tuple(int(x) for x in ind.row.removeprefix("C.").split(".") if x.isdigit())
    return (0 if ind.id.startswith("kt-") else 1, numbers)


@lru_cache(maxsize=4)
def load_indicators(directory: Path = MEASURES_DIR) -> tuple[Indicator, ...]:
    inds = [Indicator(json.loads(p.read_text(encoding="utf-8"))) for p in sorted(directory.glob("Measure-*.json"))]
    for ind in inds:
        ind.groups()  # validates the computation keys at start-up
    return tuple(sorted(inds, key=_sort_key))


@lru_cache(maxsize=4)
def load_population(path: Path = POPULATION_CSV) -> dict[str, int]:
    """Organization id of a commune station → population (see the CSV's `source` column)."""
    out: dict[str, int] = {}
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(line for line in fh if not line.startswith("#")):
            out[row["organization"].strip()] = int(row["population"])
    return out
