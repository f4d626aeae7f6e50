"""The operations this server mounts: each module listed here exposes `OPERATIONS`.

Adding an operation is one module with its handler and OperationDefinition, plus one
line here.
"""

from __future__ import annotations

import importlib

from fhir_server.operations import OperationRegistry

OPERATION_MODULES: list[str] = [
    "fhir_server.operations.document",
    "fhir_server.operations.signatures",
    "fhir_server.operations.validate",
    "fhir_server.operations.terminology",
    "fhir_server.reports.operation",
]


def default_operations() -> OperationRegistry:
    registry = OperationRegistry()
    for name in OPERATION_MODULES:
        for op in importlib.import_module(name).OPERATIONS:
            registry.register(op)
    return registry
