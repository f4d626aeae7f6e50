"""Validation of resources on every write: structure (this package) and profiles (fhir_server.profiles)."""
