"""Offline verification for auditors: needs only this package and the CA certificates.

    python -m fhir_server.signatures verify minutes.json --trust ca.pem [--crl list.crl] [--offline] [--json]
    python -m fhir_server.signatures sign minutes.json --p12 doctor.p12 --who Practitioner/ID [--cosign Bundle/ID]
    python -m fhir_server.signatures demo-pki var/pki    (a throw-away CA, CRL and key store for trials)

`minutes.json` is a signed document Bundle, or a searchset/collection Bundle holding the
document Bundle and its Provenances (`GET [base]/Bundle?_id=ID&_revinclude=Provenance:target`).
Exit status 0 only when every signature of every file is valid; 1 when one is invalid or
indeterminate; 2 when a file is unreadable or not a document.

`sign` is the client side (what a HIS does with the doctor's key): it writes the document with
`Bundle.signature` set, or with `--cosign Bundle/ID` a Provenance carrying a co-signer's
signature, to stdout or `-o FILE`. The key's password comes from the environment variable
named by `--password-env` (never from the command line).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from fhir_server.signatures.fhir_signature import SIGNATURE_TYPES, provenance_for, sign_document, signature_type
from fhir_server.signatures.signer import LocalKeySigner
from fhir_server.signatures.verify import DocumentReport, NotADocument, Verifier, is_document, report_to_dict
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
    sig = sub.add_parser("sign", help="sign a document Bundle with a local key (client-side signing)")
    sig.add_argument("file", help="the document Bundle JSON ($document output)")
    sig.add_argument("--p12", help="PKCS#12 file with the key and its certificate chain")
    sig.add_argument("--key", help="PEM private key (with --cert)")
    sig.add_argument("--cert", help="PEM certificate chain, signer first (with --key)")
    sig.add_argument("--password-env", help="name of the environment variable holding the key's password")
    sig.add_argument("--who", required=True, help="Reference of the signer, e.g. Practitioner/prac-1")
    sig.add_argument("--type", default="author", help=f"signature type ({', '.join(SIGNATURE_TYPES)})")
    sig.add_argument("--cosign", metavar="BUNDLE_REF", help="write a Provenance targeting this stored Bundle instead")
    sig.add_argument("-o", "--output", help="output file (default stdout)")
    demo = sub.add_parser("demo-pki", help="generate a throw-away CA, CRL and key store for local trials")
    demo.add_argument("folder", help="where to write them (e.g. var/pki)")
    args = parser.parse_args(argv)
    if args.command == "sign":
        return sign_command(args)
    if args.command == "demo-pki":
        from fhir_server.signatures.demo_pki import generate

        paths = generate(Path(args.folder))
        print(f"export FHIR_TRUST_ANCHORS={paths['anchors']} FHIR_CRL_FILES={paths['crl']} "
              f"FHIR_SIGNING_KEYSTORE={paths['keystore']}")
        return 0

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


def sign_command(args: argparse.Namespace) -> int:
    password = os.environ.get(args.password_env, "").encode() if args.password_env else None
    try:
        if args.p12:
            signer = LocalKeySigner.from_pkcs12("cli", Path(args.p12).read_bytes(), password or None)
        elif args.key and args.cert:
            signer = LocalKeySigner.from_pem("cli", Path(args.key).read_bytes(), Path(args.cert).read_bytes(),
                                             password or None)
        else:
            print("give --p12 FILE, or --key FILE and --cert FILE", file=sys.stderr)
            return 2
        bundle = json.loads(Path(args.file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"cannot sign: {exc}", file=sys.stderr)
        return 2
    coding = signature_type(args.type)
    if coding is None or not is_document(bundle):
        print("unknown --type" if coding is None else f"{args.file} is not a document Bundle", file=sys.stderr)
        return 2
    signature = sign_document(bundle, signer, {"reference": args.who}, [coding])
    out = provenance_for(args.cosign, bundle, signature) if args.cosign else {**bundle, "signature": signature}
    text = json.dumps(out, ensure_ascii=False, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
