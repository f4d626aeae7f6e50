"""Build the NPM-style FHIR package of the project (``make package`` / ``python -m profiles.package``).

Layout (FHIR NPM package spec, used by the IG publisher and the HL7 validator): a gzipped tarball with
``package/package.json``, ``package/.index.json`` and one JSON file per conformance resource
(StructureDefinitions, SearchParameters, OperationDefinitions of ``profiles/``; CodeSystems, ValueSets and
ConceptMaps of ``terminology/``). Written to ``dist/vn.telehealth.fhir-<version>.tgz``; deterministic
(sorted entries, fixed mtimes), so the same sources give the same bytes.

    java -jar validator_cli.jar Patient.json -version 4.0.1 -ig dist/vn.telehealth.fhir-0.1.0.tgz
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

from terminology import loader
from terminology.loader import CANONICAL_BASE

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_NAME = "vn.telehealth.fhir"
VERSION = "0.1.0"
TYPES = ("StructureDefinition", "SearchParameter", "OperationDefinition")


def resources() -> list[dict[str, Any]]:
    out = []
    for t in TYPES:
        out += [json.loads(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "profiles").glob(f"{t}-*.json"))]
    out += list(loader.iter_resources())
    return out


def manifest() -> dict[str, Any]:
    return {
        "name": PACKAGE_NAME, "version": VERSION, "canonical": CANONICAL_BASE, "fhirVersions": ["4.0.1"],
        "type": "fhir.ig", "title": "VN Telehealth FHIR profiles and terminology",
        "description": "Hồ sơ (profiles) và danh mục cho khám, chữa bệnh từ xa tại Việt Nam / Vietnamese telehealth "
                       "profiles and terminology (FHIR R4)",
        "author": "VN Telehealth FHIR project", "license": "Apache-2.0", "url": CANONICAL_BASE,
        "dependencies": {"hl7.fhir.r4.core": "4.0.1"},
        "jurisdiction": "urn:iso:std:iso:3166#VN",
    }


def index_entry(name: str, r: dict[str, Any]) -> dict[str, Any]:
    entry = {"filename": name, "resourceType": r["resourceType"], "id": r["id"]}
    for key in ("url", "version", "kind", "type"):
        if key in r and isinstance(r[key], str):
            entry[key] = r[key]
    return entry


def build(out_dir: Path) -> Path:
    files: dict[str, bytes] = {}
    index = []
    for r in resources():
        name = f"{r['resourceType']}-{r['id']}.json"
        files[name] = json.dumps(r, ensure_ascii=False, indent=1).encode("utf-8")
        index.append(index_entry(name, r))
    files["package.json"] = json.dumps(manifest(), ensure_ascii=False, indent=2).encode("utf-8")
    files[".index.json"] = json.dumps({"index-version": 1, "files": index}, ensure_ascii=False, indent=1).encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{PACKAGE_NAME}-{VERSION}.tgz"
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            tar.addfile(info, io.BytesIO(files[name]))
    with target.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return target


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m profiles.package")
    parser.add_argument("--out", type=Path, default=ROOT / "dist")
    target = build(parser.parse_args().out)
    print(f"{target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
