"""Operator commands on the store FHIR_DATABASE_URL selects (they work against a running server's database).

  python -m auth create-client --name NAME --organization Organization/ID --scope "SCOPES"
                               [--jwks-file FILE | --jwks-uri URL] [--redirect-uri URI ...] [--public]
                               [--role admin|auditor|regulator|facility|patient [--jurisdiction CODE]]
  python -m auth create-user --username U --password P --organization Organization/ID --scope "SCOPES"
                             [--fhir-user Practitioner/ID|Patient/ID] [--role ...] [--jurisdiction CODE]
  python -m auth demo-clients        register demo clients for facilities of different tiers
  python -m auth rotate-key          start signing with a new key (old keys verify until their tokens expire)
  python -m auth rebuild-owner-facts recompute which Organizations each resource belongs to (after rows were
                                     loaded around the write path; the server also does it when it finds none)

Each command prints one JSON object. A client secret appears only in create-client's output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fhir_server.principal import ADMIN, AUDITOR, FACILITY, PATIENT, REGULATOR, ROLES
from fhir_server.settings import Settings

DEMO_FACILITIES = [
    ("org-cho-ray", "central", "HIS Bệnh viện Chợ Rẫy"),
    ("org-bvdk-dong-nai", "provincial", "HIS Bệnh viện Đa khoa Đồng Nai"),
    ("org-ttyt-cam-my", "district", "HIS Trung tâm Y tế huyện Cẩm Mỹ"),
    ("org-tyt-dak-long", "commune", "Trạm Y tế Đăk Long"),
]


def _service() -> Any:
    from fhir_server.app import build_service

    return build_service(Settings.from_env(auth_enabled=True, audit_enabled=False))


def _store() -> Any:
    from auth.store import AuthStore

    return AuthStore(_service().repo.engine)


def _check(role: str, organization: str | None, jurisdiction: str | None) -> None:
    if role not in ROLES:
        raise SystemExit(f"--role must be one of {', '.join(ROLES)}")
    if role in (FACILITY, PATIENT) and not organization:
        raise SystemExit("--organization is required for facility and patient principals")
    if role == ADMIN and organization is None:
        return
    if jurisdiction and role not in (AUDITOR, REGULATOR):
        raise SystemExit("--jurisdiction applies to auditors and regulators only")


def create_client(args: argparse.Namespace) -> dict[str, Any]:
    _check(args.role, args.organization, args.jurisdiction)
    jwks = json.loads(Path(args.jwks_file).read_text()) if args.jwks_file else None
    client, secret = _store().create_client(
        name=args.name, scope=args.scope, role=args.role, organization=args.organization,
        jurisdiction=args.jurisdiction, jwks=jwks, jwks_uri=args.jwks_uri, redirect_uris=args.redirect_uri or None,
        public=args.public)
    out: dict[str, Any] = {"client_id": client.client_id, "name": client.name, "role": client.role,
                           "organization": client.organization, "scope": client.scope,
                           "token_endpoint_auth_method": client.auth_method, "grant_types": client.grant_types}
    if secret:
        out["client_secret"] = secret
    return out


def create_user(args: argparse.Namespace) -> dict[str, Any]:
    _check(args.role, args.organization, args.jurisdiction)
    user = _store().create_user(username=args.username, password=args.password, role=args.role,
                                organization=args.organization, fhir_user=args.fhir_user, scope=args.scope,
                                jurisdiction=args.jurisdiction, display_name=args.display_name)
    return {"username": user.username, "role": user.role, "organization": user.organization,
            "fhirUser": user.fhir_user, "scope": user.scope}


def demo_clients(args: argparse.Namespace) -> dict[str, Any]:
    store = _store()
    base = args.base_url.rstrip("/")
    out: list[dict[str, Any]] = []
    for org, tier, name in DEMO_FACILITIES:
        client, secret = store.create_client(name=name, scope="system/*.cruds", role=FACILITY,
                                             organization=f"Organization/{org}", client_id=f"demo-{org}",
                                             replace=True)
        out.append({"tier": tier, "organization": f"Organization/{org}", "client_id": client.client_id,
                    "client_secret": secret,
                    "curl": f"curl -s -u '{client.client_id}:{secret}' -d grant_type=client_credentials "
                            f"-d scope='system/*.cruds' {base}/auth/token"})
    regulator, secret = store.create_client(name="Sở Y tế Đồng Nai (regulator)", scope="system/*.rs",
                                            role=REGULATOR, organization="Organization/org-syt-dong-nai",
                                            jurisdiction="75", client_id="demo-syt-dong-nai", replace=True)
    out.append({"role": "regulator", "jurisdiction": "75", "client_id": regulator.client_id,
                "client_secret": secret,
                "curl": f"curl -s -u '{regulator.client_id}:{secret}' -d grant_type=client_credentials "
                        f"-d scope='system/*.rs' {base}/auth/token"})
    return {"clients": out,
            "use": f"curl -s {base}/fhir/Appointment -H \"Authorization: Bearer $TOKEN\""}


def rotate_key(args: argparse.Namespace) -> dict[str, Any]:
    from auth.keys import KeyStore

    return {"kid": KeyStore(_service().repo.engine).rotate()}


def rebuild_owner_facts(args: argparse.Namespace) -> dict[str, Any]:
    from sqlalchemy import func, select

    from auth.owner_facts import ensure_built, owner_facts

    svc = _service()
    ensure_built(svc.repo, svc.owner_facts, force=True)
    with svc.repo.engine.connect() as conn:
        facts = conn.execute(select(func.count()).select_from(owner_facts)).scalar_one()
        owned = conn.execute(select(func.count(func.distinct(owner_facts.c.res_pk)))).scalar_one()
    return {"resources": int(owned), "facts": int(facts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create-client")
    c.add_argument("--name", required=True)
    c.add_argument("--organization")
    c.add_argument("--scope", required=True)
    c.add_argument("--jwks-file")
    c.add_argument("--jwks-uri")
    c.add_argument("--redirect-uri", action="append")
    c.add_argument("--public", action="store_true", help="a public client (authorization code + PKCE, no secret)")
    c.add_argument("--role", default=FACILITY, choices=ROLES)
    c.add_argument("--jurisdiction")
    u = sub.add_parser("create-user")
    u.add_argument("--username", required=True)
    u.add_argument("--password", required=True)
    u.add_argument("--organization")
    u.add_argument("--scope", required=True)
    u.add_argument("--fhir-user")
    u.add_argument("--display-name")
    u.add_argument("--role", default=FACILITY, choices=ROLES)
    u.add_argument("--jurisdiction")
    d = sub.add_parser("demo-clients")
    d.add_argument("--base-url", default="http://127.0.0.1:8080")
    sub.add_parser("rotate-key")
    sub.add_parser("rebuild-owner-facts")
    args = parser.parse_args(argv)
    handler = {"create-client": create_client, "create-user": create_user, "demo-clients": demo_clients,
               "rotate-key": rotate_key, "rebuild-owner-facts": rebuild_owner_facts}[args.command]
    # demo-clients is read by people (make run); the others by scripts: one line.
    print(json.dumps(handler(args), ensure_ascii=False, indent=2 if args.command == "demo-clients" else None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
