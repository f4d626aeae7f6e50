"""The audit trail's own table: what a captured request reads back as, that every R4 AuditEvent
search parameter finds its events (captured or given whole, before and after their keys are
written behind them on SQLite), paging, the boundary on reads, and events moved from the
resources table of an older database."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from authkit import World, close_app, database, make_world_app
from conftest import BACKENDS

from auth.audit import capture, columns_of, event_from_columns
from auth.audit_keys import drop_column_indexes, index_keys
from auth.audit_search import SELECTED, TrailQuery
from auth.audit_trail import CAPTURED_COLUMNS, dbapi_cursor, index_values, insert_captured, insert_given
from fhir_server.errors import Forbidden
from fhir_server.interactions.model import FhirRequest, FhirResponse
from fhir_server.principal import Principal


@pytest.fixture(scope="module", params=BACKENDS)
def world(request: Any, tmp_path_factory: Any) -> Iterator[World]:
    url, schema = database(request.param, tmp_path_factory.mktemp("trail"))
    app = make_world_app(url)
    yield World(app)
    close_app(app, schema)


USER = Principal(client_id="app-1", role="patient", organization="Organization/org-c", user="Patient/p1")
CASES = [
    (FhirRequest(method="GET", res_type="Patient", res_id="p1", source_address="10.0.0.1", principal=USER),
     "read", FhirResponse(status=200), None),
    (FhirRequest(method="GET", res_type="Encounter", params=[("subject", "Patient/p1")], source_address="10.0.0.9"),
     "search-type", None, Forbidden("no", "không")),
    (FhirRequest(method="POST", principal=Principal(client_id="his-7", organization="Organization/o-7")),
     "transaction", FhirResponse(status=200), None),
]


_MARKS = itertools.count(1_700_000_000_000_000, 1000)


def _trail(world: World) -> Any:
    return world.svc.type_handlers["AuditEvent"]["read"].__self__.trail


def _store(world: World, case: tuple[Any, ...]) -> tuple[int, int, dict[str, Any]]:
    """The case once as a captured row and once given whole; → (captured pk, given pk, its event)."""
    pending = capture(*case)
    event = event_from_columns(dict(zip(CAPTURED_COLUMNS, columns_of(pending, 0), strict=True)))  # = build_event
    stored_us = next(_MARKS)  # tells this row from those the app's audit writer adds meanwhile
    with world.svc.repo.unit_of_work() as uow:
        cur, mark = dbapi_cursor(uow.conn)
        insert_captured(cur, mark, [columns_of(pending, stored_us)])
        cur.execute(f"SELECT pk FROM audit_trail WHERE stored_us = {stored_us} AND content IS NULL")
        captured_pk = int(cur.fetchone()[0])
        given_pk = insert_given(cur, mark, world.svc.search.registry, event, None, stored_us)
        cur.close()
    return captured_pk, given_pk, event


def _key_all(world: World) -> None:
    """What the audit writer does every few seconds on SQLite, to the end of the trail now."""
    while index_keys(world.svc.repo):
        pass


def _found(world: World, query: list[tuple[str, str]]) -> set[int]:
    q = TrailQuery(params=[*query, ("_count", "1000")], base_url="http://x/fhir", strict=True, boundary=None,
                   default_count=20, max_count=1000)
    with world.svc.repo.search_connection() as conn:
        return {s.res_pk for s in _trail(world).search(conn, q).matches}


@pytest.mark.parametrize("case", CASES, ids=["read", "denied-search", "transaction"])
def test_a_captured_request_reads_back_as_the_event_built_for_it(world: World, case: tuple[Any, ...]) -> None:
    captured_pk, _given, event = _store(world, case)
    with world.svc.repo.search_connection() as conn:
        stored = _trail(world).read(conn, str(captured_pk), None)
    import orjson

    body = orjson.loads(stored.content)
    assert body["id"] == str(captured_pk) and body["meta"]["versionId"] == "1"
    assert {k: v for k, v in body.items() if k not in ("id", "meta")} == event


@pytest.mark.parametrize("keyed", [False, True], ids=["after-the-mark", "keyed"])
@pytest.mark.parametrize("case", CASES, ids=["read", "denied-search", "transaction"])
def test_every_value_the_r4_parameters_extract_finds_the_event_captured_and_given_whole(
        world: World, case: tuple[Any, ...], keyed: bool) -> None:
    captured_pk, given_pk, event = _store(world, case)
    if keyed:
        _key_all(world)
    values = index_values(world.svc.search.registry, event)  # the generic FHIRPath extraction
    expected = {"subtype", "type"} | ({"agent", "altid"} if case[0].principal is not None else {"address"})
    assert {code for code, _s, _v in values} >= expected
    for code, system, value in values:
        params = world.svc.search.registry.for_type("AuditEvent")
        kind = next(p.type for p in params if p.code == code)
        if kind == "reference":
            raw = f"{system}/{value}" if system else value
        elif kind == "token":
            raw = f"{system}|{value}" if system else value
        else:
            raw = value
        found = _found(world, [(code, raw)])
        assert {captured_pk, given_pk} <= found, (code, raw)
        assert not {captured_pk, given_pk} & _found(world, [(code, raw + "-other")]), (code, raw)
    for code in ("action", "outcome"):
        assert {captured_pk, given_pk} <= _found(world, [(code, event[code])])
    recorded = event["recorded"]
    assert {captured_pk, given_pk} <= _found(world, [("date", recorded), ("date", f"le{recorded}"),
                                                     ("date", f"ge{recorded}")])
    assert not {captured_pk, given_pk} & _found(world, [("date", f"gt{recorded}")])


def test_an_id_only_reference_finds_each_type_the_parameter_can_point_at(world: World) -> None:
    captured_pk, given_pk, _event = _store(world, CASES[0])
    assert {captured_pk, given_pk} <= _found(world, [("agent", "p1")])
    assert {captured_pk, given_pk} <= _found(world, [("agent:Patient", "p1"), ("patient", "Patient/p1")])
    assert not {captured_pk, given_pk} & _found(world, [("agent:Practitioner", "p1")])


def test_pages_follow_signed_links_without_gaps_or_repeats(world: World) -> None:
    for i in range(7):
        body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": f"2026-11-0{i + 1}T00:00:00Z",
                "agent": [{"who": {"reference": "Organization/paging"}, "requestor": True}],
                "source": {"observer": {"display": "paging"}}}
        assert world.send("POST", "/fhir/AuditEvent", "admin", body).status_code == 201
    seen: list[str] = []
    url: str | None = "/fhir/AuditEvent?agent=Organization/paging&_sort=-date&_count=3"
    totals = []
    while url:
        resp = world.get(url, "admin")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        bundle = resp.get_json()
        totals.append(bundle.get("total"))
        seen += [e["resource"]["recorded"] for e in bundle.get("entry", [])]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = "/fhir" + nxt[0].split("/fhir", 1)[1] if nxt else None
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 7
    assert totals[0] == 7  # counted on the first page (later pages as the generic search: on request)


def test_an_id_too_long_for_a_row_number_is_simply_not_found(world: World) -> None:
    assert world.get("/fhir/AuditEvent/99999999999999999999", "admin").status_code == 404
    bundle = world.get("/fhir/AuditEvent?_id=99999999999999999999", "admin").get_json()
    assert bundle["resourceType"] == "Bundle" and bundle["total"] == 0


def test_an_altered_paging_link_is_refused(world: World) -> None:
    resp = world.get("/fhir/AuditEvent?_page=bm90LXNpZ25lZA", "admin")
    assert resp.status_code == 400 and resp.get_json()["issue"][0]["expression"] == ["_page"]


def test_every_event_has_one_version_and_no_history(world: World) -> None:
    body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-11-01T00:00:00Z",
            "agent": [{"who": {"reference": "Organization/org-p"}, "requestor": True}],
            "source": {"observer": {"display": "versions"}}}
    created = world.send("POST", "/fhir/AuditEvent", "admin", body)
    assert created.status_code == 201
    res_id = created.get_json()["id"]
    assert created.headers["Location"].endswith(f"/AuditEvent/{res_id}/_history/1")
    assert world.get(f"/fhir/AuditEvent/{res_id}/_history/1", "admin").status_code == 200
    assert world.get(f"/fhir/AuditEvent/{res_id}/_history/2", "admin").status_code == 404
    assert world.get(f"/fhir/AuditEvent/{res_id}/_history", "admin").status_code == 405


def test_a_read_outside_the_jurisdiction_is_not_found(world: World) -> None:
    ids = {}
    for org in ("org-p", "org-m"):  # provinces 75 and 51
        body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-11-01T00:00:00Z",
                "agent": [{"who": {"reference": f"Organization/{org}"}, "requestor": True}],
                "source": {"observer": {"display": "boundary"}}}
        ids[org] = world.send("POST", "/fhir/AuditEvent", "admin", body).get_json()["id"]
    for who in ("auditor", "regulator"):  # both of province 75
        assert world.get(f"/fhir/AuditEvent/{ids['org-p']}", who).status_code == 200
        outside = world.get(f"/fhir/AuditEvent/{ids['org-m']}", who)
        assert outside.status_code == 404 and outside.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("keyed", [False, True], ids=["after-the-mark", "keyed"])
def test_the_total_counts_only_what_the_auditor_may_read(world: World, keyed: bool) -> None:
    world.get("/fhir/Patient/pat-commune", "commune")  # org-m's own request: outside province 75
    if keyed:
        world.svc.audit.flush()
        _key_all(world)
    bundle = world.get("/fhir/AuditEvent?_count=1000", "auditor").get_json()
    agents = {a["who"].get("reference") for e in bundle.get("entry", []) for a in e["resource"]["agent"]}
    assert "Organization/org-m" not in agents
    assert bundle["total"] == len(bundle.get("entry", []))


def test_unknown_parameters_are_ignored_with_a_warning_or_refused_when_strict(world: World) -> None:
    lenient = world.get("/fhir/AuditEvent?no-such-param=1", "admin").get_json()
    outcome = [e for e in lenient.get("entry", []) if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["code"] == "not-supported"
    strict = world.send("GET", "/fhir/AuditEvent?no-such-param=1", "admin", Prefer="handling=strict")
    assert strict.status_code == 400 and strict.get_json()["issue"][0]["expression"] == ["no-such-param"]


@pytest.mark.parametrize("query", ["?_type=AuditEvent", "/Patient?_revinclude=AuditEvent:patient",
                                   "/AuditEvent?_include=AuditEvent:agent&_count=1"])
def test_searches_that_would_reach_the_trail_through_the_generic_index_are_refused(world: World,
                                                                                     query: str) -> None:
    resp = world.send("GET", f"/fhir{query}", "admin", Prefer="handling=strict")
    assert resp.status_code == 400 and resp.get_json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize("query", ["date=xx2026", "agent:identifier=a|b", "outcome:not=0", "_sort=agent",
                                   "_count=abc", "date:missing=true", "altid=\x00"])
def test_malformed_trail_searches_are_bad_requests_not_server_errors(world: World, query: str) -> None:
    resp = world.get(f"/fhir/AuditEvent?{quote(query, safe='=&')}", "admin")
    assert resp.status_code == 400 and resp.get_json()["resourceType"] == "OperationOutcome"


def test_audit_events_of_an_older_database_move_into_the_trail_with_their_ids(
        tmp_path_factory: Any) -> None:
    from auth.audit_trail import move_from_resources
    from fhir_server.app import build_service
    from fhir_server.settings import Settings
    from fhir_server.storage.tables import resources

    url, _schema = database("sqlite", tmp_path_factory.mktemp("moved"))
    svc = build_service(Settings(database_url=url, auth_enabled=False, audit_enabled=False))
    body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-10-01T08:00:00Z",
            "agent": [{"who": {"reference": "Organization/org-old"}, "requestor": True}],
            "source": {"observer": {"display": "old"}}}
    with svc.repo.unit_of_work() as uow:  # as an older version stored it: an ordinary resource
        uow.upsert("AuditEvent", "old-event-1", body, method="POST")
    assert move_from_resources(svc.repo, svc.search.registry) == 1
    assert move_from_resources(svc.repo, svc.search.registry) == 0
    from sqlalchemy import func, select

    with svc.repo.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resources)
                            .where(resources.c.res_type == "AuditEvent")).scalar() == 0
    resp = svc.dispatch(FhirRequest(method="GET", res_type="AuditEvent", res_id="old-event-1"))
    assert resp.status == 200 and '"Organization/org-old"' in (resp.content or "")
    found = svc.dispatch(FhirRequest(method="GET", res_type="AuditEvent", params=[("agent", "Organization/org-old")]))
    assert [e["resource"] for e in (found.resource or {}).get("entry", [])]
    svc.repo.engine.dispose()


def test_result_parameters_shape_count_and_sort_the_trail(world: World) -> None:
    for day in ("03", "01", "02"):
        body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": f"2026-09-{day}T00:00:00Z",
                "outcome": "0", "action": "E",
                "agent": [{"who": {"reference": "Organization/shaping"}, "requestor": True,
                                           "network": {"address": "Host-A.example"}}],
                "source": {"observer": {"display": "shaping"}}}
        assert world.send("POST", "/fhir/AuditEvent", "admin", body).status_code == 201
    base = "/fhir/AuditEvent?agent=Organization/shaping"
    count = world.get(f"{base}&_summary=count", "admin").get_json()
    assert count["total"] == 3 and "entry" not in count
    shaped = world.get(f"{base}&_elements=outcome&_sort=date", "admin").get_json()
    recorded = [e["resource"] for e in shaped["entry"]]
    assert recorded and all("action" not in r and r["outcome"] == "0" for r in recorded)
    dates = [e["resource"]["recorded"] for e in world.get(f"{base}&_sort=date", "admin").get_json()["entry"]]
    assert dates == sorted(dates)
    assert world.get(f"{base}&address:contains=a.exam", "admin").get_json()["total"] == 3
    assert world.get(f"{base}&address=host-a", "admin").get_json()["total"] == 3
    assert world.get(f"{base}&address:exact=host-a", "admin").get_json()["total"] == 0
    first = shaped["entry"][0]["resource"]["id"]
    assert [e["resource"]["id"] for e in world.get(f"{base}&_id={first}", "admin").get_json()["entry"]] == [first]


def test_the_capability_statement_says_what_the_trail_supports(world: World) -> None:
    meta = world.client.get("/fhir/metadata").get_json()
    audit = next(r for r in meta["rest"][0]["resource"] if r["type"] == "AuditEvent")
    assert {i["code"] for i in audit["interaction"]} == {"create", "read", "vread", "search-type"}
    assert {"date", "agent", "entity", "outcome"} <= {p["name"] for p in audit.get("searchParam", [])}
    assert not audit.get("searchInclude") and not audit.get("searchRevInclude")


def _rows(world: World, entity: str | None = None, interaction: str | None = None) -> list[Any]:
    """The trail's rows as stored now (no flush of the process's queue)."""
    from sqlalchemy import select

    from auth.audit_trail import audit_trail

    stmt = select(audit_trail.c.pk, audit_trail.c.entity, audit_trail.c.interaction, audit_trail.c.outcome)
    if entity is not None:
        stmt = stmt.where(audit_trail.c.entity == entity)
    if interaction is not None:
        stmt = stmt.where(audit_trail.c.interaction == interaction)
    with world.svc.repo.engine.connect() as conn:
        return list(conn.execute(stmt))


def _queued(world: World) -> list[Any]:
    return list(world.svc.audit._queue)


def test_a_write_is_recorded_in_its_own_transaction_not_through_the_queue(world: World) -> None:
    body = {"resourceType": "Patient", "managingOrganization": {"reference": "Organization/org-p"}}
    resp = world.send("POST", "/fhir/Patient", "provincial", body)
    assert resp.status_code == 201
    entity = f"Patient/{resp.get_json()['id']}"
    assert not [p for p in _queued(world) if getattr(p, "created", None) == entity]
    rows = _rows(world, entity, "create")
    assert len(rows) == 1 and rows[0].outcome == "0"  # committed with the Patient, before the response
    update = world.send("PUT", f"/fhir/{entity}", "provincial", resp.get_json())
    assert update.status_code == 200 and len(_rows(world, entity, "update")) == 1
    delete = world.send("DELETE", f"/fhir/{entity}", "provincial")
    assert delete.status_code in (200, 204) and len(_rows(world, entity, "delete")) == 1


def test_a_refused_write_leaves_no_success_record_and_its_failure_is_recorded(world: World) -> None:
    before = {r.pk for r in _rows(world, interaction="create")}
    bad = {"resourceType": "Patient", "gender": "not-a-gender",
           "managingOrganization": {"reference": "Organization/org-p"}}
    assert world.send("POST", "/fhir/Patient", "provincial", bad).status_code in (400, 422)
    world.svc.audit.flush()
    new = [r for r in _rows(world, interaction="create") if r.pk not in before]
    assert new and all(r.outcome == "4" for r in new)


def test_a_transaction_is_recorded_once_with_its_writes(world: World) -> None:
    before = {r.pk for r in _rows(world, interaction="transaction")}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "managingOrganization": {"reference": "Organization/org-p"}},
         "request": {"method": "POST", "url": "Patient"}}]}
    assert world.send("POST", "/fhir", "provincial", bundle).status_code == 200
    new = [r for r in _rows(world, interaction="transaction") if r.pk not in before]
    assert len(new) == 1 and new[0].outcome == "0"


def test_a_rolled_back_transaction_has_only_its_failure_recorded(world: World) -> None:
    before = {r.pk for r in _rows(world, interaction="transaction")}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {"resourceType": "Patient", "managingOrganization": {"reference": "Organization/org-p"}},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Patient", "gender": "not-a-gender"},
         "request": {"method": "POST", "url": "Patient"}}]}
    assert world.send("POST", "/fhir", "provincial", bundle).status_code >= 400
    world.svc.audit.flush()
    new = [r for r in _rows(world, interaction="transaction") if r.pk not in before]
    assert len(new) == 1 and new[0].outcome == "4"


def test_a_v2_query_restricted_scope_narrows_the_trail_for_reads_and_searches(world: World) -> None:
    ids = {}
    for outcome in ("0", "8"):
        body = {"resourceType": "AuditEvent", "type": {"code": "rest"}, "recorded": "2026-11-01T00:00:00Z",
                "outcome": outcome, "agent": [{"who": {"reference": "Organization/org-p"}, "requestor": True}],
                "source": {"observer": {"display": "restricted"}}}
        ids[outcome] = world.send("POST", "/fhir/AuditEvent", "admin", body).get_json()["id"]
    scope = "system/AuditEvent.rs?outcome=8"
    assert world.get(f"/fhir/AuditEvent/{ids['8']}", "auditor", scope).status_code == 200
    assert world.get(f"/fhir/AuditEvent/{ids['0']}", "auditor", scope).status_code == 404
    found = world.get("/fhir/AuditEvent?_count=1000", "auditor", scope).get_json()
    outcomes = {e["resource"].get("outcome") for e in found.get("entry", [])}
    assert outcomes == {"8"} and found["total"] == len(found["entry"])
    assert world.get("/fhir/Composition", "auditor", scope).status_code == 403  # nothing but AuditEvent


def test_a_bulk_insert_larger_than_one_statement_keeps_every_row_in_queue_order(world: World) -> None:
    """The writer inserts a batch in multi-row statements of a few hundred rows (SQLite) or one COPY
    (PostgreSQL): a batch that spans several statements loses and reorders nothing."""
    pending = [capture(FhirRequest(method="GET", res_type="Patient", res_id=f"bulk-{n}", source_address="10.0.0.2",
                                   principal=USER), "read", FhirResponse(status=200), None) for n in range(1234)]
    stored_us = next(_MARKS)
    with world.svc.repo.unit_of_work() as uow:
        cur, mark = dbapi_cursor(uow.conn)
        insert_captured(cur, mark, [columns_of(p, stored_us) for p in pending])
        cur.execute(f"SELECT entity, client_id, status FROM audit_trail WHERE stored_us = {stored_us} ORDER BY pk")
        rows = [tuple(r) for r in cur.fetchall()]
        cur.close()
    assert rows == [(f"Patient/bulk-{n}", "app-1", 200) for n in range(1234)]


def _plain_index_names(world: World) -> set[str]:
    """The trail's B-tree indexes on its who/what columns, as the database lists them."""
    wanted = ("ix_trail_org", "ix_trail_user", "ix_trail_entity", "ix_trail_client")
    sql = ("SELECT indexname FROM pg_indexes WHERE tablename = 'audit_trail'" if world.svc.repo.postgres
           else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_trail'")
    with world.svc.repo.engine.connect() as conn:
        return {r[0] for r in conn.exec_driver_sql(sql)} & set(wanted)


def test_the_who_and_what_columns_are_indexed_on_postgresql_and_keyed_behind_the_rows_on_sqlite(
        world: World) -> None:
    if world.svc.repo.postgres:
        assert _plain_index_names(world) == {"ix_trail_org", "ix_trail_user", "ix_trail_entity", "ix_trail_client"}
        assert index_keys(world.svc.repo) == 0  # no mark is kept there
    else:
        assert _plain_index_names(world) == set()


def test_rows_up_to_the_mark_are_searched_by_their_keys_and_later_rows_by_their_columns(world: World) -> None:
    """The keys are what a SQLite search asks of a keyed row: its column, changed behind their back, is
    no longer consulted. (The trail is append-only; the UPDATE only shows which part answers.)"""
    keyed_pk, _given, _event = _store(world, CASES[0])  # entity Patient/p1
    _key_all(world)
    later_pk, _given, _event = _store(world, CASES[0])
    with world.svc.repo.unit_of_work() as uow:
        uow.conn.exec_driver_sql(f"UPDATE audit_trail SET entity = 'Patient/moved' WHERE pk IN ({keyed_pk}, "
                                 f"{later_pk})")
    by_old, by_new = _found(world, [("entity", "Patient/p1")]), _found(world, [("entity", "Patient/moved")])
    if world.svc.repo.postgres:  # no keys: the indexed column answers for every row
        assert keyed_pk not in by_old and {keyed_pk, later_pk} <= by_new
    else:
        assert keyed_pk in by_old and keyed_pk not in by_new
        assert later_pk in by_new and later_pk not in by_old


def test_a_trail_keyed_a_few_rows_at_a_time_finds_every_row_at_every_step(world: World) -> None:
    stored_us = next(_MARKS)
    pending = [capture(FhirRequest(method="GET", res_type="Patient", res_id="stepwise", principal=Principal(
        client_id=f"step-{n}", organization="Organization/org-step")), "read", FhirResponse(status=200), None)
        for n in range(5)]
    with world.svc.repo.unit_of_work() as uow:
        cur, mark = dbapi_cursor(uow.conn)
        insert_captured(cur, mark, [columns_of(p, stored_us) for p in pending])
        cur.close()
    expected = _found(world, [("entity", "Patient/stepwise")])
    assert len(expected) == 5
    while index_keys(world.svc.repo, limit=2):  # (the app's own writer may key some rows meanwhile)
        assert _found(world, [("entity", "Patient/stepwise")]) == expected
        assert _found(world, [("agent", "Organization/org-step")]) == expected
        assert len(_found(world, [("altid", "step-3")]) & expected) == 1
    assert _found(world, [("entity", "Patient/stepwise")]) == expected


def test_a_keyed_search_looks_its_rows_up_rather_than_scanning_the_trail(world: World) -> None:
    from sqlalchemy import select

    trail = _trail(world)
    stmt = select(*SELECTED).where(trail.clause("entity", "Patient/p1", "http://x/fhir"),
                                   trail.clause("agent", "Organization/org-c", "http://x/fhir")).limit(21)
    with world.svc.repo.engine.connect() as conn:
        sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        explain = "EXPLAIN " if world.svc.repo.postgres else "EXPLAIN QUERY PLAN "
        plan = " | ".join(str(r[-1]) for r in conn.exec_driver_sql(explain + sql))
    if not world.svc.repo.postgres:  # (PostgreSQL's planner may rightly scan a table this small)
        assert "SCAN audit_trail" not in plan, plan
        assert "ix_audit_index_value" in plan, plan


def test_an_older_sqlite_trail_drops_its_column_indexes(world: World) -> None:
    if world.svc.repo.postgres:
        pytest.skip("PostgreSQL keeps the column indexes")
    with world.svc.repo.unit_of_work() as uow:
        uow.conn.exec_driver_sql("CREATE INDEX ix_trail_entity ON audit_trail (entity)")
        uow.conn.exec_driver_sql("CREATE INDEX ix_audit_index_pk ON audit_index (pk)")
    assert _plain_index_names(world) == {"ix_trail_entity"}
    drop_column_indexes(world.svc.repo)
    assert _plain_index_names(world) == set()
    with world.svc.repo.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_master WHERE name = 'ix_audit_index_pk'").scalar() == 0


def test_the_audit_writer_keys_what_it_wrote_by_itself(world: World) -> None:
    if world.svc.repo.postgres:
        pytest.skip("PostgreSQL keeps the column indexes")
    import time

    from auth.audit_trail import KEYS_MARK

    sink = world.svc.audit
    sink.keys_interval, before = 0.05, sink.keys_interval
    try:
        assert world.get("/fhir/Patient/pat-commune", "commune").status_code == 200
        deadline = time.monotonic() + 30
        while True:
            with world.svc.repo.engine.connect() as conn:
                last, mark = conn.exec_driver_sql(
                    "SELECT (SELECT max(pk) FROM audit_trail WHERE entity = 'Patient/pat-commune'), "
                    "(SELECT value FROM server_state WHERE name = ?)", (KEYS_MARK,)).one()
            if last is not None and mark is not None and int(mark) >= last:
                break
            assert time.monotonic() < deadline, "the writer did not key the row"
            time.sleep(0.05)
    finally:
        sink.keys_interval = before
