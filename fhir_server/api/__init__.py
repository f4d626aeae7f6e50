"""The Flask edge: HTTP → FhirRequest, FhirResponse → HTTP. No FHIR logic lives here."""
