"""The signatures component of the FHIR service (framework-free): configuration, the
check of signed Bundles and Provenances on write, and the immutability of signed documents.

- validator: a signed document Bundle is verified before it is stored (422 otherwise);
- write hook (inside the writing unit of work, so a transaction sees its own writes and
  fails as a whole): a stored signed Bundle gets the Provenance of its signing (target,
  agent = Signature.who, signature = Bundle.signature); a signing Provenance is verified
  against the Bundle as the transaction sees it; both record in `signed_compositions`
  which stored Composition the document was built from (by id, else by identifier);
- write guard: signed Bundles, signing Provenances and those Compositions cannot be
  updated, patched (409) or deleted (405); a correction is a new Composition with
  `relatesTo.code = replaces`, whose document is signed again.

Installed through `COMPONENT_INSTALLERS` (`install(svc, settings, engine)`); the
operations ($sign, $verify-signature) get the same state through `signatures_of(svc)`.

Configuration (Settings.extra first, then the environment):
- `trust_anchors` / `FHIR_TRUST_ANCHORS`: PEM file or directory of the trusted CAs;
- `crl_files` / `FHIR_CRL_FILES`: CRL files (os.pathsep-separated in the environment);
- `revocation_network` / `FHIR_REVOCATION_NETWORK`: fetch OCSP and CRL distribution points (default true);
- `signing_keystore` / `FHIR_SIGNING_KEYSTORE` (+ `FHIR_SIGNING_KEYSTORE_PASSWORD`): the local key store.
"""

from __future__ import annotations

import os
import uuid
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import Column, String, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from fhir_server.errors import Conflict, Issue, MethodNotAllowed, Unprocessable
from fhir_server.settings import Settings, env_flag
from fhir_server.signatures.fhir_signature import provenance_for
from fhir_server.signatures.revocation import RevocationChecker
from fhir_server.signatures.signer import KeyStore
from fhir_server.signatures.verify import (
    DocumentReport,
    NotADocument,
    Verifier,
    is_document,
)
from fhir_server.signatures.x509_trust import ENV_TRUST_ANCHORS, load_anchors
from fhir_server.storage.tables import metadata

if TYPE_CHECKING:
    from fhir_server.interactions.model import FhirRequest
    from fhir_server.service import FhirService
    from fhir_server.storage.repository import StoredResource, WriteResult

JOSE = "application/jose"


@dataclass
class SignatureConfig:
    verifier: Verifier
    keystore: KeyStore

    @classmethod
    def from_settings(cls, settings: Settings, env: dict[str, str] | None = None) -> SignatureConfig:
        env = dict(os.environ if env is None else env)
        extra = settings.extra
        anchors_path = extra.get("trust_anchors") or env.get(ENV_TRUST_ANCHORS, "")
        anchor_paths = anchors_path if isinstance(anchors_path, list) else \
            [p for p in str(anchors_path).split(os.pathsep) if p]
        crl = extra.get("crl_files")
        if crl is None:
            crl = [p for p in env.get("FHIR_CRL_FILES", "").split(os.pathsep) if p]
        network = extra.get("revocation_network")
        if network is None:
            network = env_flag("FHIR_REVOCATION_NETWORK", True)
        verifier = Verifier(load_anchors(anchor_paths),
                            RevocationChecker(crl_files=[Path(p) for p in crl], network=bool(network)))
        store = extra.get("signing_keystore")
        if isinstance(store, KeyStore):
            keystore = store
        elif store:
            password = env.get("FHIR_SIGNING_KEYSTORE_PASSWORD")
            keystore = KeyStore.from_directory(str(store), password.encode() if password else None)
        else:
            keystore = KeyStore.from_env(env)
        return cls(verifier=verifier, keystore=keystore)


_CONFIGS: weakref.WeakKeyDictionary[FhirService, SignatureConfig] = weakref.WeakKeyDictionary()


def signatures_of(svc: FhirService) -> SignatureConfig:
    config = _CONFIGS.get(svc)
    if config is None:
        config = _CONFIGS[svc] = SignatureConfig.from_settings(svc.settings)
    return config


# -- checks ---------------------------------------------------------------------------
def report_issues(report: DocumentReport) -> list[Issue]:
    issues = []
    for s in report.signatures:
        if s.valid:
            continue
        for r in s.reasons:
            issues.append(Issue(en=f"{s.location}: {r.message('en')}", vi=f"{s.location}: {r.message('vi')}",
                                code="security" if r.code != "revocation-unknown" else "incomplete",
                                expression=(s.location.split("/", 1)[0].split(".")[0] + ".signature"
                                            if s.location.startswith("Provenance") else s.location,)))
    return issues


def reject_unless_valid(report: DocumentReport, what: str) -> None:
    if report.valid:
        return
    raise Unprocessable(f"{what}: a signature is not valid", f"{what}: chữ ký không hợp lệ",
                        issues=report_issues(report))


def has_jose_signature(resource: dict[str, Any]) -> bool:
    sigs = resource.get("signature")
    sigs = sigs if isinstance(sigs, list) else [sigs]
    return any(isinstance(s, dict) and s.get("sigFormat") == JOSE for s in sigs)


def signed_bundle_targets(provenance: dict[str, Any]) -> list[str]:
    out = []
    for t in provenance.get("target") or []:
        ref = t.get("reference") if isinstance(t, dict) else None
        if isinstance(ref, str) and ref.startswith("Bundle/") and ref.count("/") == 1:
            out.append(ref.split("/", 1)[1])
    return out


def refuse_change(what: str, method: str) -> None:
    if method == "DELETE":
        raise MethodNotAllowed(
            f"{what} is a signed document record and cannot be deleted",
            f"{what} là hồ sơ đã ký số, không thể xóa", headers={"Allow": "GET, HEAD"})
    raise Conflict(
        f"{what} is signed and cannot be changed; record a correction as a new Composition that replaces "
        "the old one (relatesTo.code = replaces) and sign its document again",
        f"{what} đã được ký số nên không thể sửa; hãy lập biên bản đính chính là một Composition mới thay thế "
        "biên bản cũ (relatesTo.code = replaces) và ký lại")


# Which stored Compositions a signed document Bundle was built from (written in the transaction that stores
# the signed Bundle or its signing Provenance): those Compositions are immutable from then on.
signed_compositions = Table(
    "signed_compositions",
    metadata,
    Column("composition_id", String(64), primary_key=True),
    Column("bundle_id", String(64), primary_key=True),
)


def _composition_ids(svc: FhirService, uow: Any, bundle: dict[str, Any]) -> list[str]:
    """The stored Compositions the document was built from: by id, else by identifier."""
    comp = bundle["entry"][0]["resource"]
    if isinstance(comp.get("id"), str):
        return [comp["id"]] if _exists(uow.read("Composition", comp["id"])) else []
    ident = comp.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        criteria = "identifier=" + (f"{ident['system']}|" if ident.get("system") else "") + ident["value"]
        return [m.res_id for m in svc.search.match(uow.conn, "Composition", criteria, limit=50)]
    return []


def register_signed_document(svc: FhirService, uow: Any, bundle_id: str, bundle: dict[str, Any]) -> list[str]:
    """Lock the Compositions of a signed document Bundle (inside the writing unit of work)."""
    ids = _composition_ids(svc, uow, bundle)
    conn = uow.conn
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    for comp_id in ids:
        conn.execute(dialect.insert(signed_compositions).values(composition_id=comp_id, bundle_id=bundle_id)
                     .on_conflict_do_nothing())
    return ids


def signing_bundles(conn: Any, composition_id: str) -> list[str]:
    rows = conn.execute(select(signed_compositions.c.bundle_id)
                        .where(signed_compositions.c.composition_id == composition_id)
                        .order_by(signed_compositions.c.bundle_id))
    return [r[0] for r in rows]


def refuse_composition_change(comp_id: str, bundle_ids: list[str], method: str) -> None:
    docs = ", ".join(f"Bundle/{b}" for b in bundle_ids)
    if method == "DELETE":
        raise MethodNotAllowed(
            f"Composition/{comp_id} is the content of the signed document {docs} and cannot be deleted",
            f"Composition/{comp_id} là nội dung của tài liệu đã ký số {docs}, không thể xóa",
            headers={"Allow": "GET, HEAD"})
    raise Conflict(
        f"Composition/{comp_id} is the content of the signed document {docs} and cannot be changed; record a "
        "correction as a new Composition that replaces it (relatesTo.code = replaces) and sign its document again",
        f"Composition/{comp_id} là nội dung của tài liệu đã ký số {docs} nên không thể sửa; hãy lập biên bản "
        "đính chính là một Composition mới thay thế biên bản này (relatesTo.code = replaces) và ký lại",
        expression="Composition")


class SignatureHooks:
    """Validator (signed Bundles are verified before they are stored), write hook (a signed Bundle gets the
    Provenance of its signing and a signing Provenance is verified against the Bundle, both in the writing
    transaction) and write guard (signed documents, their signing Provenances and the Compositions they were
    built from are immutable)."""

    def __init__(self, svc: FhirService) -> None:
        self.svc = svc

    def validate(self, resource: dict[str, Any], res_type: str, mode: str) -> None:
        # A signed record is immutable: say so (409) before judging the new content's signatures.
        if mode == "update" and res_type in ("Bundle", "Provenance") and isinstance(resource.get("id"), str) \
                and self._locked(self.svc.repo.read(res_type, resource["id"])):
            refuse_change(f"{res_type}/{resource['id']}", "PUT")
        if mode == "update" and res_type == "Composition" and isinstance(resource.get("id"), str):
            with self.svc.repo.read_connection() as conn:
                bundles = signing_bundles(conn, resource["id"])
            if bundles:
                refuse_composition_change(resource["id"], bundles, "PUT")
        if res_type == "Bundle" and "signature" in resource:
            if not is_document(resource):
                if resource.get("type") == "document":
                    raise Unprocessable("A signed document Bundle must start with its Composition",
                                        "Bundle tài liệu đã ký phải bắt đầu bằng Composition",
                                        expression="Bundle.entry[0].resource")
                return  # signatures of other Bundle types are not this component's business
            try:
                report = signatures_of(self.svc).verifier.fresh().verify_package(resource)
            except NotADocument as exc:
                raise Unprocessable(str(exc), "Không phải Bundle tài liệu FHIR hợp lệ", expression="Bundle") from exc
            reject_unless_valid(report, "Bundle.signature")

    def after_write(self, req: FhirRequest, uow: Any, result: WriteResult) -> None:
        res_type, resource = result.stored.res_type, result.resource
        if res_type == "Bundle" and "signature" in resource and is_document(resource):
            self.record_signing(uow, result.stored.res_id, resource)
        elif res_type == "Provenance" and has_jose_signature(resource):
            for bundle_id in signed_bundle_targets(resource):
                bundle = self.check_provenance(uow, bundle_id, resource)
                register_signed_document(self.svc, uow, bundle_id, bundle)

    def record_signing(self, uow: Any, bundle_id: str, bundle: dict[str, Any]) -> dict[str, Any]:
        """The Provenance of a client-signed document Bundle (target, agent = Signature.who, signature)."""
        comp_ids = register_signed_document(self.svc, uow, bundle_id, bundle)
        comp_ref = f"Composition/{comp_ids[0]}" if comp_ids else None
        provenance = provenance_for(f"Bundle/{bundle_id}", bundle, bundle["signature"], comp_ref)
        return uow.upsert("Provenance", str(uuid.uuid4()), provenance, method="POST").resource

    def check_provenance(self, uow: Any, bundle_id: str, provenance: dict[str, Any]) -> dict[str, Any]:
        """Verify a signing Provenance against the Bundle as this transaction sees it."""
        stored = uow.read("Bundle", bundle_id)
        if not _exists(stored):
            raise Unprocessable(f"The signed Bundle/{bundle_id} does not exist (in a transaction, the document "
                                "Bundle comes before its Provenances)",
                                f"Bundle/{bundle_id} được ký không tồn tại (trong transaction, Bundle tài liệu phải "
                                "đứng trước các Provenance của nó)", expression="Provenance.target")
        bundle = orjson.loads(stored.content)
        try:
            report = signatures_of(self.svc).verifier.fresh().verify_package(
                {k: v for k, v in bundle.items() if k != "signature"}, [provenance], f"Bundle/{bundle_id}")
        except NotADocument as exc:
            raise Unprocessable(str(exc), "Mục tiêu không phải Bundle tài liệu",
                                expression="Provenance.target") from exc
        reject_unless_valid(report, "Provenance.signature")
        return dict(bundle)

    def guard(self, req: FhirRequest, current: StoredResource) -> None:
        if current.res_type == "Composition" and not current.deleted:
            if req.uow is not None:
                bundles = signing_bundles(req.uow.conn, current.res_id)
            else:
                with self.svc.repo.read_connection() as conn:
                    bundles = signing_bundles(conn, current.res_id)
            if bundles:
                refuse_composition_change(current.res_id, bundles, req.method)
        elif self._locked(current):
            refuse_change(f"{current.res_type}/{current.res_id}", req.method)

    def _locked(self, current: StoredResource | None) -> bool:
        if current is None or current.deleted or current.content is None \
                or current.res_type not in ("Bundle", "Provenance"):
            return False
        resource = orjson.loads(current.content)
        if current.res_type == "Bundle":
            return "signature" in resource or self._cosigned(current.res_id)
        return has_jose_signature(resource) and bool(signed_bundle_targets(resource))

    def _cosigned(self, bundle_id: str) -> bool:
        with self.svc.repo.read_connection() as conn:
            found = self.svc.search.match(conn, "Provenance", f"target=Bundle/{bundle_id}", limit=50)
        return any(p.content and has_jose_signature(orjson.loads(p.content)) for p in found)


def _exists(stored: StoredResource | None) -> bool:
    return stored is not None and not stored.deleted and stored.content is not None


def install(svc: FhirService, settings: Settings, engine: Any) -> None:
    signatures_of(svc)
    hooks = SignatureHooks(svc)
    svc.validators.append(hooks.validate)
    svc.write_guards.append(hooks.guard)
    svc.write_hooks.append(hooks.after_write)
    _HOOKS[svc] = hooks


_HOOKS: weakref.WeakKeyDictionary[FhirService, SignatureHooks] = weakref.WeakKeyDictionary()


def hooks_of(svc: FhirService) -> SignatureHooks:
    hooks = _HOOKS.get(svc)
    return hooks if hooks is not None else SignatureHooks(svc)
