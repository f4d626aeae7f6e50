"""Offline verification for auditors: needs only this package and the CA certificates.

    python -m fhir_server.signatures verify minutes.json --trust ca.pem [--crl list.crl] [--offline] [--json]

`minutes.json` is a signed document Bundle, or a searchset/collection Bundle holding the
document Bundle and its Provenances (`GET [base]/Bundle?_id=ID&_revinclude=Provenance:target`).
Exit status 0 only when every signature of every file is valid; 1 when one is invalid or
indeterminate; 2 when a file is unreadable or not a document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fhir_server.signatures.verify import DocumentReport, NotADocument, Verifier, report_to_dict
from fhir_server.signatures.x509_trust import ENV_TRUST_ANCHORS, anchors_from_env

_MARK = {"valid": "OK  ", "invalid": "FAIL", "indeterminate": "??  "}


def render(path: str, report: DocumentReport, lang: str) -> str:
    lines = [f"{path}: {report.title or '(no title)'}"]
    if report.identifier:
        lines.append(f"  document {report.identifier.get('system', '')}|{report.identifier.get('value', '')}")
    for s in report.signatures:
        who = (s.who or {}).get("display") or (s.who or {}).get("reference") or "?"
        types = ", ".join(t.get("display") or t.get("code", "") for t in s.types)
        lines.append(f"  [{_MARK[s.status]}] {s.location}: {s.status.upper()} — {types or 'signature'} by {who}")
        for r in s.reasons:
            lines.append(f"         reason: {r.code}: {r.message(lang)}")
        if s.subject:
            lines.append(f"         certificate: {s.subject}")
            lines.append(f"         issuer: {s.issuer}; serial {s.serial}; valid {s.not_before} .. {s.not_after}")
        if s.signing_time:
            lines.append(f"         signed at {s.signing_time} with {s.algorithm} ({s.key})")
        if s.revocation:
            source = f" ({s.revocation_source})" if s.revocation_source else ""
            lines.append(f"         status: {s.revocation}{source}")
        for loc in s.also_in:
            lines.append(f"         also recorded in {loc}")
    lines.append(f"  RESULT: {'VALID' if report.valid else 'NOT VALID'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fhir_server.signatures",
                                     description="Verify signed FHIR document Bundles offline.")
    sub = parser.add_subparsers(dest="command", required=True)
    ver = sub.add_parser("verify", help="verify every signature of one or more document Bundles")
    ver.add_argument("files", nargs="+", help="document Bundle JSON files (or searchset/collection packages)")
    ver.add_argument("--trust", action="append", default=[],
                     help=f"trusted CA certificates: PEM file or directory (repeatable; default ${ENV_TRUST_ANCHORS})")
    ver.add_argument("--crl", action="append", default=[], help="a CRL file (PEM or DER; repeatable)")
    ver.add_argument("--offline", action="store_true", help="no OCSP/CRL download: use only --crl files")
    ver.add_argument("--json", action="store_true", help="machine-readable output")
    ver.add_argument("--lang", choices=("vi", "en"), default="en")
    args = parser.parse_args(argv)

    verifier = Verifier.from_paths(args.trust, args.crl, network=not args.offline)
    if not args.trust:
        verifier.anchors = anchors_from_env()
    if not verifier.anchors:
        print(f"no trust anchors: give --trust ca.pem or set {ENV_TRUST_ANCHORS}", file=sys.stderr)
        return 2
    status = 0
    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            bundle = json.loads(Path(path).read_text(encoding="utf-8"))
            report = verifier.verify_package(bundle)
        except (OSError, ValueError, NotADocument) as exc:
            status = 2
            results.append({"file": path, "error": str(exc)})
            if not args.json:
                print(f"{path}: ERROR: {exc}")
            continue
        if not report.valid and status == 0:
            status = 1
        results.append({"file": path, **report_to_dict(report)})
        if not args.json:
            print(render(path, report, args.lang))
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
