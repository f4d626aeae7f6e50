"""Generate a StructureDefinition snapshot from its differential and the base R4 definitions.

A compact version of the FHIR snapshot algorithm (profiling.html#snapshot), enough for the constraints
our profiles use: the base snapshot is copied; each differential element is merged into the element with
the same id (cardinality, fixed/pattern, binding, type narrowing, constraints appended, slicing, texts);
children of a complex datatype are expanded from the datatype's own StructureDefinition when the
differential reaches into them; a slice is a copy of its slicing root (with its subtree) inserted after
the root's subtree. ``mapping`` entries are dropped to keep the files small.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

Element = dict[str, Any]
BaseLoader = Callable[[str], dict[str, Any]]  # type name → base StructureDefinition

MERGED = ("short", "definition", "comment", "requirements", "min", "max", "mustSupport", "slicing", "sliceName",
          "binding", "type", "maxLength", "isModifier", "isModifierReason", "isSummary", "meaningWhenMissing")
VALUE_PREFIXES = ("fixed", "pattern", "defaultValue", "minValue", "maxValue")


def _strip(e: Element) -> Element:
    e = copy.deepcopy(e)
    e.pop("mapping", None)
    return e


def _rebase(elements: list[Element], old_id: str, old_path: str, new_id: str, new_path: str) -> list[Element]:
    out = []
    for e in elements:
        e = _strip(e)
        e["id"] = new_id + e["id"][len(old_id):]
        e["path"] = new_path + e["path"][len(old_path):]
        if e["id"] == new_id:
            continue
        out.append(e)
    return out


def _subtree_end(snapshot: list[Element], index: int) -> int:
    """Index just after the element at `index` and everything below it (children and slices)."""
    root = snapshot[index]["id"]
    j = index + 1
    while j < len(snapshot) and (snapshot[j]["id"].startswith(root + ".") or snapshot[j]["id"].startswith(root + ":")):
        j += 1
    return j


def _path_of(element_id: str) -> str:
    return ".".join(part.split(":")[0] for part in element_id.split("."))


def _parent_id(element_id: str) -> str:
    return element_id.rsplit(".", 1)[0]


def _expand_children(snapshot: list[Element], index: int, load_base: BaseLoader) -> None:
    """Insert the children of a complex-typed element (from its datatype definition) if absent."""
    e = snapshot[index]
    if index + 1 < len(snapshot) and snapshot[index + 1]["id"].startswith(e["id"] + "."):
        return
    types = e.get("type") or []
    if not types:
        return
    code = types[0]["code"]
    if code[0].islower() or code in ("Resource",):
        return
    if code in ("BackboneElement", "Element"):
        # A slice of a backbone element: copy the subtree of its slicing root.
        if ":" in e["id"].rsplit(".", 1)[-1]:
            root_id = e["id"].rsplit(":", 1)[0]
            root = next((i for i, x in enumerate(snapshot) if x["id"] == root_id), None)
            if root is not None:
                subtree = [x for x in snapshot[root + 1:_subtree_end(snapshot, root)]
                           if ":" not in x["id"][len(root_id):]]
                snapshot[index + 1:index + 1] = _rebase(subtree, root_id, e["path"], e["id"], e["path"])
        return
    base = load_base(code)
    elements = base["snapshot"]["element"]
    snapshot[index + 1:index + 1] = _rebase(elements, elements[0]["id"], elements[0]["path"], e["id"], e["path"])


def _find(snapshot: list[Element], element_id: str) -> int | None:
    for i, e in enumerate(snapshot):
        if e["id"] == element_id:
            return i
    return None


def _locate(snapshot: list[Element], element_id: str, load_base: BaseLoader) -> int:
    found = _find(snapshot, element_id)
    if found is not None:
        return found
    last = element_id.rsplit(".", 1)[-1]
    if ":" in last:  # a new slice: copy of the slicing root, after the root's subtree
        root_id = element_id.rsplit(":", 1)[0]
        root = _locate(snapshot, root_id, load_base)
        end = _subtree_end(snapshot, root)
        sliced = _strip(snapshot[root])
        sliced.pop("slicing", None)
        sliced["id"] = element_id
        sliced["sliceName"] = last.split(":", 1)[1]
        snapshot.insert(end, sliced)
        return end
    parent = _locate(snapshot, _parent_id(element_id), load_base)
    _expand_children(snapshot, parent, load_base)
    found = _find(snapshot, element_id)
    if found is None:
        # A choice type narrowed by name (valueCoding for value[x]).
        name = last
        for i, e in enumerate(snapshot):
            tail = e["id"].rsplit(".", 1)[-1]
            if e["id"].startswith(_parent_id(element_id) + ".") and tail.endswith("[x]") and \
                    name.startswith(tail[:-3]) and _parent_id(e["id"]) == _parent_id(element_id):
                return i
        raise KeyError(f"element {element_id} is not in the base definition")
    return found


def _merge(target: Element, diff: Element) -> None:
    for key, value in diff.items():
        if key in ("id", "path"):
            continue
        if key == "constraint":
            have = {c["key"] for c in target.get("constraint", [])}
            target.setdefault("constraint", []).extend(copy.deepcopy(c) for c in value if c["key"] not in have)
        elif key in MERGED or key.startswith(VALUE_PREFIXES) or key.startswith("_"):
            target[key] = copy.deepcopy(value)
        else:
            target[key] = copy.deepcopy(value)


def generate_snapshot(sd: dict[str, Any], load_base: BaseLoader) -> list[Element]:
    base = load_base(sd["type"]) if sd["baseDefinition"].startswith("http://hl7.org/fhir/StructureDefinition/") \
        else None
    if base is None:
        raise ValueError(f"{sd['url']}: only profiles of core R4 types are supported")
    snapshot = [_strip(e) for e in base["snapshot"]["element"]]
    for diff in sd["differential"]["element"]:
        i = _locate(snapshot, diff["id"], load_base)
        if diff["id"] != snapshot[i]["id"]:  # choice narrowed by name
            snapshot[i]["id"] = diff["id"]
        _merge(snapshot[i], diff)
        # Descendants of a changed element keep the element's path.
        snapshot[i]["path"] = _path_of(snapshot[i]["id"]) if not snapshot[i]["id"].endswith("]") else \
            snapshot[i]["path"]
    for e in snapshot:
        e.setdefault("path", _path_of(e["id"]))
    return snapshot
