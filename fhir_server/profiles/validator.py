"""The profile validator: one object, built once, plugged into ``svc.validators``.

A resource is checked against every profile it claims (``meta.profile``) and the profiles the server
enforces for its type (configuration), plus the always-on Vietnamese identifier and code checks
(``rules.identifier_issues``). Configuration, from ``Settings.extra["profiles"]`` or the environment:

- ``enforce`` / ``FHIR_ENFORCED_PROFILES``: ``all`` (every type with a profile), a comma list of types or
  canonical URLs, or empty (default: only claimed profiles — other components' tests write minimal resources);
- ``circular30`` / ``FHIR_CIRCULAR30_SEVERITY``: ``error`` (default, the law restricts remote treatment to
  the list) or ``warning``;
- ``check_codes``: reject codings of our complete CodeSystems with unknown codes (default true).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from fhir_server.errors import Issue, Unprocessable
from fhir_server.profiles.compiler import CompiledProfile, Context, Walker, compile_profile
from fhir_server.profiles.conformance import ACTIVE_UNIT_OF_WORK
from fhir_server.profiles.rules import RULES, identifier_issues
from fhir_server.profiles.terminology import Terminology
from terminology.loader import CANONICAL_BASE

PROFILES_DIR = Path(__file__).resolve().parent.parent.parent / "profiles"
_SEVERITY_ORDER = {"fatal": 0, "error": 1, "warning": 2, "information": 3}


def load_structure_definitions(directory: Path = PROFILES_DIR) -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("StructureDefinition-*.json"))]


@cache
def compiled_profiles() -> dict[str, CompiledProfile]:
    """Every resource profile of profiles/, compiled once per process (extensions are not compiled)."""
    definitions = load_structure_definitions()
    extensions = {sd["url"]: sd for sd in definitions if sd.get("type") == "Extension"}
    return {sd["url"]: compile_profile(sd, extensions) for sd in definitions if sd.get("kind") == "resource"}


def _config(settings: Any) -> dict[str, Any]:
    extra = getattr(settings, "extra", None) or {}
    return dict(extra.get("profiles") or {})


class ProfileValidator:
    def __init__(self, profiles: dict[str, CompiledProfile], terminology: Terminology, repo: Any = None,
                 settings: Any = None) -> None:
        cfg = _config(settings)
        self.profiles = profiles
        self.terminology = terminology
        self.repo = repo
        self.walker = Walker(terminology, RULES)
        severity = str(cfg.get("circular30") or os.environ.get("FHIR_CIRCULAR30_SEVERITY") or "error").lower()
        self.circular30_severity = "warning" if severity == "warning" else "error"
        self.check_codes = bool(cfg.get("check_codes", True))
        self.by_type: dict[str, list[str]] = {}
        for url, p in profiles.items():
            self.by_type.setdefault(p.res_type, []).append(url)
        enforce = cfg.get("enforce", os.environ.get("FHIR_ENFORCED_PROFILES", ""))
        self.enforced = self._enforced(enforce)

    def _enforced(self, spec: Any) -> dict[str, list[str]]:
        items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else list(spec or [])) if s.strip()]
        out: dict[str, list[str]] = {}
        for item in items:
            if item == "all":
                for t, urls in self.by_type.items():
                    out.setdefault(t, []).extend(urls)
            elif item in self.profiles:
                out.setdefault(self.profiles[item].res_type, []).append(item)
            elif item in self.by_type:
                out.setdefault(item, []).extend(self.by_type[item])
        return {t: sorted(set(urls)) for t, urls in out.items()}

    # -- facts for other parts -------------------------------------------------------------
    def profiles_for(self, res_type: str) -> list[str]:
        return list(self.by_type.get(res_type, []))

    def read(self, res_type: str, res_id: str) -> dict[str, Any] | None:
        """A current resource from the repository (for rules that look at referenced resources)."""
        uow = ACTIVE_UNIT_OF_WORK.get()
        source = uow if uow is not None else self.repo
        if source is None:
            return None
        try:
            stored = source.read(res_type, res_id)
        except Exception:
            return None
        if stored is None or stored.deleted or stored.content is None:
            return None
        data: dict[str, Any] = orjson.loads(stored.content)
        return data

    # -- validation ---------------------------------------------------------------------------
    def profile_urls(self, resource: dict[str, Any], res_type: str, extra: Iterable[str] = ()) -> list[str]:
        claimed = [str(p).split("|")[0] for p in (resource.get("meta") or {}).get("profile", []) or []]
        urls: list[str] = []
        for url in [*claimed, *self.enforced.get(res_type, []), *extra]:
            if url not in urls:
                urls.append(url)
        return urls

    def issues(self, resource: dict[str, Any], res_type: str, mode: str = "create",
               profiles: Iterable[str] | None = None) -> list[Issue]:
        """Every issue (errors first); `profiles` replaces the enforced ones (the $validate `profile`)."""
        out: list[Issue] = []
        if profiles is None:
            urls = self.profile_urls(resource, res_type)
        else:
            urls = list(dict.fromkeys([*profiles, *self.profile_urls(resource, "")]))
        for url in urls:
            compiled = self.profiles.get(url)
            if compiled is None:
                if url.startswith(CANONICAL_BASE):
                    out.append(Issue(en=f"Unknown profile {url}", vi=f"Không biết hồ sơ (profile) {url}",
                                     code="not-supported", expression=(f"{res_type}.meta.profile",)))
                else:
                    out.append(Issue(en=f"Profile {url} is not known to this server and was not checked",
                                     vi=f"Máy chủ không biết hồ sơ {url} nên không kiểm tra",
                                     code="not-supported", severity="information",
                                     expression=(f"{res_type}.meta.profile",)))
                continue
            if compiled.res_type != res_type:
                out.append(Issue(en=f"Profile {url} is for {compiled.res_type}, not {res_type}",
                                 vi=f"Hồ sơ {url} dành cho {compiled.res_type}, không phải {res_type}",
                                 code="invalid", expression=(f"{res_type}.meta.profile",)))
                continue
            ctx = Context(resource=resource, res_type=res_type, mode=mode, services=self)
            out.extend(self.walker.validate(compiled, ctx))
        # Always-on checks, unless a profile already reported the same element.
        seen = {e for i in out for e in i.expression}
        out += [i for i in identifier_issues(resource, res_type, self) if not set(i.expression) & seen]
        return sorted(out, key=lambda i: _SEVERITY_ORDER.get(i.severity, 9))

    def __call__(self, resource: dict[str, Any], res_type: str, mode: str) -> None:
        issues = self.issues(resource, res_type, mode)
        errors = [i for i in issues if i.severity in ("fatal", "error")]
        if errors:
            first = errors[0]
            raise Unprocessable(first.en, first.vi, issues=issues[:50])

    def delete_issues(self, current: dict[str, Any], res_type: str) -> list[Issue]:
        """What forbids deleting `current` (the rules of its profiles that look at deletion)."""
        out: list[Issue] = []
        for url in self.profile_urls(current, res_type):
            compiled = self.profiles.get(url)
            if compiled is None or compiled.res_type != res_type:
                continue
            ctx = Context(resource=current, res_type=res_type, mode="delete", profile=compiled, services=self)
            for c in compiled.root.constraints:
                if c.rule == "issued-prescription-immutable":
                    out.extend(RULES[c.rule](ctx, current, res_type, c))
        return out
