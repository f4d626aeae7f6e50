"""The policy table (auth/policy.toml) compiled once: profiles per (role, tier) and ownership links."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fhir_server.principal import ADMIN, FACILITY, ROLES, TIERS
from fhir_server.registry import RESOURCE_TYPES

POLICY_FILE = Path(__file__).with_name("policy.toml")
READ_ACTIONS = frozenset("rs")
WRITE_ACTIONS = frozenset("cud")
BOUNDARIES = ("none", "organization", "jurisdiction", "patient")


@dataclass(frozen=True)
class Profile:
    role: str
    tier: str
    open: frozenset[str]
    read: frozenset[str]
    write: frozenset[str]
    rights: frozenset[str]
    boundary: str
    contexts: frozenset[str]

    @property
    def readable(self) -> frozenset[str]:
        return self.open | self.read

    def ceiling(self) -> dict[str, frozenset[str]]:
        """Per resource type, the SMART actions this profile may ever hold."""
        out: dict[str, frozenset[str]] = {}
        for t in RESOURCE_TYPES:
            actions: frozenset[str] = frozenset()
            if t in self.readable:
                actions |= READ_ACTIONS
            if t in self.write:
                actions |= WRITE_ACTIONS
            if actions:
                out[t] = actions
        return out


@dataclass(frozen=True)
class Policy:
    profiles: dict[tuple[str, str], Profile]
    owner: dict[str, tuple[str, ...]]
    consulted: dict[str, tuple[str, ...]]
    patient: dict[str, tuple[str, ...]]
    public: frozenset[str]
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def profile(self, role: str, tier: str | None) -> Profile | None:
        return self.profiles.get((role, tier or "*")) or self.profiles.get((role, "*"))

    def read_links(self, res_type: str) -> tuple[str, ...]:
        return self.owner.get(res_type, ()) + self.consulted.get(res_type, ())


def _expand(names: list[str], groups: dict[str, list[str]]) -> frozenset[str]:
    out: set[str] = set()
    for name in names:
        if name == "*":
            out |= set(RESOURCE_TYPES)
        elif name.startswith("@"):
            if name[1:] not in groups:
                raise ValueError(f"policy: unknown group {name}")
            out |= set(groups[name[1:]])
        else:
            out.add(name)
    unknown = out - set(RESOURCE_TYPES)
    if unknown:
        raise ValueError(f"policy: unknown resource types {sorted(unknown)}")
    return frozenset(out)


def compile_policy(data: dict[str, Any]) -> Policy:
    groups: dict[str, list[str]] = data.get("groups", {})
    profiles: dict[tuple[str, str], Profile] = {}
    for p in data.get("profile", []):
        role, tier = p["role"], p.get("tier", "*")
        if role not in ROLES or (tier != "*" and tier not in TIERS):
            raise ValueError(f"policy: bad role/tier {role}/{tier}")
        if p["boundary"] not in BOUNDARIES:
            raise ValueError(f"policy: bad boundary {p['boundary']}")
        if role == FACILITY and p["boundary"] == "none":
            raise ValueError("policy: a facility always has a data boundary")
        profiles[(role, tier)] = Profile(
            role=role, tier=tier, open=_expand(p.get("open", []), groups), read=_expand(p.get("read", []), groups),
            write=_expand(p.get("write", []), groups), rights=frozenset(p.get("rights", [])),
            boundary=p["boundary"], contexts=frozenset(p.get("contexts", ["system", "user"])))
    if (ADMIN, "*") not in profiles:
        raise ValueError("policy: the admin profile is missing")

    def links(section: str) -> dict[str, tuple[str, ...]]:
        out = {t: tuple(v) for t, v in data.get(section, {}).items()}
        unknown = set(out) - set(RESOURCE_TYPES)
        if unknown:
            raise ValueError(f"policy: [{section}] names unknown types {sorted(unknown)}")
        return out

    return Policy(profiles=profiles, owner=links("owner"), consulted=links("consulted"), patient=links("patient"),
                  public=frozenset(groups.get("public", [])), raw=data)


@lru_cache(maxsize=4)
def load_policy(path: Path = POLICY_FILE) -> Policy:
    with path.open("rb") as fh:
        return compile_policy(tomllib.load(fh))
