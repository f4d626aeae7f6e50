"""FHIR RESTful interactions, one module each; none of them knows about HTTP frameworks."""
