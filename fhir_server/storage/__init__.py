"""Storage: a narrow repository interface and its SQLAlchemy implementation."""

from fhir_server.storage.repository import Repository, StoredResource, UnitOfWork

__all__ = ["Repository", "StoredResource", "UnitOfWork"]
