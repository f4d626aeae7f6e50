"""Operations registry: each $operation declares where it is mounted and its handler.

An operation module calls `register(Operation(...))` at import; the CapabilityStatement
lists what is registered, and the dispatcher routes `/$code`, `/Type/$code` and
`/Type/id/$code` from this table only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fhir_server.interactions.model import FhirRequest, FhirResponse
    from fhir_server.service import FhirService

Handler = Callable[["FhirService", "FhirRequest"], "FhirResponse"]


@dataclass(frozen=True)
class Operation:
    code: str  # without "$"
    handler: Handler
    system: bool = False
    type_level: bool = False
    instance: bool = False
    resource_types: tuple[str, ...] = ()  # empty = every served type
    definition: str | None = None  # canonical URL of the OperationDefinition
    affects_state: bool = False
    # Which scope action authorization requires ("read", "write", or a custom right).
    access: str = "read"
    documentation: str = ""

    def mounted_on(self, res_type: str | None, instance: bool) -> bool:
        if res_type is None:
            return self.system
        if self.resource_types and res_type not in self.resource_types:
            return False
        return self.instance if instance else self.type_level


class OperationRegistry:
    def __init__(self) -> None:
        self._ops: dict[str, list[Operation]] = {}

    def register(self, op: Operation) -> None:
        self._ops.setdefault(op.code, []).append(op)

    def find(self, code: str, res_type: str | None, instance: bool) -> Operation | None:
        for op in self._ops.get(code, []):
            if op.mounted_on(res_type, instance):
                return op
        return None

    def known(self, code: str) -> bool:
        return code in self._ops

    def all(self) -> list[Operation]:
        return [op for ops in self._ops.values() for op in ops]
