"""Vietnamese profiles and terminology (issue #4): compiled once at start-up, checked on every write.

- ``terminology``: in-memory CodeSystems and ValueSets (expansion, validate-code, lookup) from ``terminology/``;
- ``compiler``: StructureDefinitions (``profiles/``) → compiled checks; ``rules``: Vietnamese rules in Python;
- ``validator``: the validator plugged into ``svc.validators``; ``component``: ``install(svc, settings, engine)``;
- ``conformance``: the server's conformance resources, served read-only from memory;
- ``claim_xml``: converter from the claim XML (QĐ 130/4750, XML1/XML2) to the profiles.
"""
