"""List and load the terminology resources of this directory (CodeSystem, ValueSet, ConceptMap JSON).

The canonical base of the project's own artefacts is configured here, once: ``CANONICAL_BASE``
(documented in ``terminology/README.md``). Everything else is data: a corrected list is a data change.

Also builds a commune CodeSystem from a CSV (``code,name,province_code``) so that the official list of
3,321 communes (2025) can be loaded without being committed; ``communes.sample.csv`` is a fictional sample.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CANONICAL_BASE = "http://fhir.vntelehealth.org/r4"
CODESYSTEM_BASE = f"{CANONICAL_BASE}/CodeSystem/"
VALUESET_BASE = f"{CANONICAL_BASE}/ValueSet/"
CONCEPTMAP_BASE = f"{CANONICAL_BASE}/ConceptMap/"
STRUCTUREDEFINITION_BASE = f"{CANONICAL_BASE}/StructureDefinition/"
SID_BASE = f"{CANONICAL_BASE}/sid/"
# The Ministry of Health draft VN Core, whose identifier systems and extensions we reuse (README).
MOH_CORE_BASE = "http://fhir.ehealth.gov.vn/core"

TERMINOLOGY_DIR = Path(__file__).resolve().parent
RESOURCE_TYPES = ("CodeSystem", "ValueSet", "ConceptMap")
SAMPLE_COMMUNES_CSV = TERMINOLOGY_DIR / "communes.sample.csv"

_COMMUNE_CODE = re.compile(r"^\d{5}$")
_PROVINCE_CODE = re.compile(r"^\d{2}$")


def list_files(resource_type: str | None = None, directory: Path = TERMINOLOGY_DIR) -> list[Path]:
    """The resource files (``<Type>-<id>.json``), sorted; optionally of one resource type."""
    types = (resource_type,) if resource_type else RESOURCE_TYPES
    return sorted(p for t in types for p in directory.glob(f"{t}-*.json"))


def load_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def iter_resources(resource_type: str | None = None, directory: Path = TERMINOLOGY_DIR) -> Iterator[dict[str, Any]]:
    for path in list_files(resource_type, directory):
        yield load_file(path)


def load_all(directory: Path = TERMINOLOGY_DIR) -> dict[str, dict[str, Any]]:
    """All resources keyed by canonical ``url``."""
    return {r["url"]: r for r in iter_resources(directory=directory)}


def get(url: str, directory: Path = TERMINOLOGY_DIR) -> dict[str, Any] | None:
    return load_all(directory).get(url)


def iter_concepts(concepts: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Walk a (possibly hierarchical) CodeSystem ``concept`` list depth-first."""
    for concept in concepts:
        yield concept
        yield from iter_concepts(concept.get("concept", []))


def codes(codesystem: dict[str, Any]) -> dict[str, str]:
    """code → display of every concept of a CodeSystem (nested ones included)."""
    return {c["code"]: c.get("display", "") for c in iter_concepts(codesystem.get("concept", []))}


def communes_from_csv(
    path: Path,
    *,
    sample: bool = False,
    version: str = "0.1.0",
    source: str = "",
) -> dict[str, Any]:
    """Build the ``commune`` CodeSystem from a CSV with header ``code,name,province_code``.

    Codes must be 5 digits and province codes 2 digits. The province code is kept as a concept property
    ``province`` (a code of ``<base>/CodeSystem/province``). ``content`` is ``complete`` only when the CSV is
    not a sample and holds the full national list (3,321 communes in 2025); otherwise ``fragment``.
    """
    concepts: list[dict[str, Any]] = []
    seen: set[str] = set()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "name", "province_code"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        for n, row in enumerate(reader, start=2):
            code = (row["code"] or "").strip()
            name = (row["name"] or "").strip()
            province = (row["province_code"] or "").strip()
            if not _COMMUNE_CODE.match(code):
                raise ValueError(f"{path}:{n}: commune code {code!r} is not 5 digits")
            if not _PROVINCE_CODE.match(province):
                raise ValueError(f"{path}:{n}: province code {province!r} is not 2 digits")
            if not name:
                raise ValueError(f"{path}:{n}: empty name")
            if code in seen:
                raise ValueError(f"{path}:{n}: duplicate commune code {code}")
            seen.add(code)
            concepts.append({"code": code, "display": name,
                             "property": [{"code": "province", "valueCode": province}]})
    complete = not sample and len(concepts) >= 3321
    note = ("DỮ LIỆU MẪU, mã không có thật / SAMPLE, fictional codes. " if sample else "") + (source or str(path.name))
    return {
        "resourceType": "CodeSystem",
        "id": "commune",
        "url": f"{CODESYSTEM_BASE}commune",
        "version": version,
        "name": "Commune",
        "title": "Xã, phường, đặc khu (mã 5 chữ số, từ 01/7/2025)",
        "status": "draft",
        "experimental": sample,
        "publisher": "Dự án máy chủ FHIR khám, chữa bệnh từ xa Việt Nam (VN Telehealth FHIR project)",
        "description": (
            "**VI:** Danh mục xã, phường (mã 5 chữ số) nạp từ tệp CSV.\n\n"
            "**EN:** Commune-level administrative units (5-digit codes) loaded from a CSV.\n\n"
            f"**Nguồn / Source:** {note}"
        ),
        "caseSensitive": True,
        "valueSet": f"{VALUESET_BASE}commune",
        "content": "complete" if complete else "fragment",
        "count": len(concepts),
        "property": [{"code": "province", "uri": f"{CODESYSTEM_BASE}province", "type": "code",
                      "description": "Province code (CodeSystem province)"}],
        "concept": concepts,
    }


def validate(resource: dict[str, Any]) -> Any:
    """Parse with the fhir.resources R4B model (raises on invalid content)."""
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def main() -> None:  # pragma: no cover - convenience listing
    for path in list_files():
        r = load_file(path)
        n = len(list(iter_concepts(r.get("concept", [])))) if r["resourceType"] == "CodeSystem" else ""
        print(f"{r['resourceType']:<11} {r['url']:<75} {r.get('content', ''):<9} {n}")


if __name__ == "__main__":  # pragma: no cover
    main()
