"""FHIR R4 server for Vietnam's telehealth network."""

__version__ = "0.1.0"
