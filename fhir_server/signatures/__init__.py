"""Digital signatures of FHIR documents (issue #6), framework-free.

canonical (RFC 8785 document canonicalization) · jws (RFC 7515 detached) · x509_trust
(paths to configured anchors) · revocation (OCSP, CRL) · signer (Signer, key store) ·
fhir_signature (Signature elements, Provenance) · verify (the one verifier) ·
__main__ (offline CLI). The server side lives in `component` and `fhir_server.operations.signatures`.
"""
