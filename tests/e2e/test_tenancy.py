"""Every statement on a table a tenant owns names the tenant, child tables included: the
rule db/tenancy.py states, checked on every statement a real workload runs."""

import re
from collections.abc import Iterator

import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import event

from service.db.models import Base
from tests.advances import Client, payload
from tests.support import auth

# Every table with entity_id and mode columns but `api_keys`: a key is looked up by its
# hash before anyone knows whose it is (as `entities`, the tenants themselves, by id).
TENANT_TABLES = {
    table.name
    for table in Base.metadata.sorted_tables
    if {"entity_id", "mode"} <= set(table.columns.keys()) and table.name != "api_keys"
}
# Maintenance across tenants, by design: the sweep of expired idempotency records.
ACROSS_TENANTS = re.compile(r"DELETE FROM idempotency_records WHERE \(.*create_time <=", re.S)


@pytest.fixture
def statements(database) -> Iterator[list[tuple[str, set[str]]]]:
    """Each statement run, with the names of its bind parameters."""
    seen: list[tuple[str, set[str]]] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        compiled = getattr(context, "compiled", None)
        seen.append((statement, set(compiled.binds) if compiled is not None else set()))

    event.listen(database, "before_cursor_execute", record)
    yield seen
    event.remove(database, "before_cursor_execute", record)


def test_every_statement_on_a_tenant_table_names_the_tenant(channel, key, statements, proof):
    counters = counters_pb2_grpc.CounterServiceStub(channel)
    for kind in (cpb.COUNTER_TYPE_INVOICE, cpb.COUNTER_TYPE_AR_ADVANCE):
        counters.AdvanceCounter(
            cpb.AdvanceCounterRequest(counter_type=kind, advance_to=5, prefix="X"),
            metadata=auth(key),
        )
    counters.BatchAdvanceCounters(
        cpb.BatchAdvanceCountersRequest(
            counters=[
                cpb.AdvanceCounterRequest(counter_type=kind, advance_to=9)
                for kind in (cpb.COUNTER_TYPE_INVOICE, cpb.COUNTER_TYPE_QUOTE)
            ]
        ),
        metadata=auth(key),
    )
    counters.IssueNumbers(
        cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE), metadata=auth(key)
    )
    counters.IssueNumbers(
        cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE),
        metadata=(*auth(key), ("idempotency-key", "k")),
    )
    counters.GetCounter(
        cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_INVOICE), metadata=auth(key)
    )
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(
            counter_type=cpb.COUNTER_TYPE_JOURNAL, series="EU", prefix="J{YY}-",
            reset=cpb.COUNTER_RESET_MONTHLY, period="2025-06", advance_to=3,
        ),
        metadata=auth(key),
    )  # fmt: skip
    counters.IssueNumbers(
        cpb.IssueNumbersRequest(
            counter_type=cpb.COUNTER_TYPE_JOURNAL, series="EU", document_date="2025-07-01"
        ),
        metadata=auth(key),
    )
    for period in ("", "2025-06"):
        counters.GetCounter(
            cpb.GetCounterRequest(
                counter_type=cpb.COUNTER_TYPE_JOURNAL, series="EU", period=period
            ),
            metadata=auth(key),
        )
    counters.UpdateCounter(
        cpb.UpdateCounterRequest(
            counter=cpb.Counter(counter_type=cpb.COUNTER_TYPE_JOURNAL, series="EU", suffix="-x")
        ),
        metadata=auth(key),
    )
    counters.VoidNumbers(
        cpb.VoidNumbersRequest(
            counter_type=cpb.COUNTER_TYPE_JOURNAL, series="EU", period="2025-07", first_value=1,
            last_value=1, reason="failed",
        ),
        metadata=auth(key),
    )  # fmt: skip
    for series in ("", "EU"):
        counters.ListCounterEvents(
            cpb.ListCounterEventsRequest(series=series, page_size=2), metadata=auth(key)
        )
    counters.ListCounters(cpb.ListCountersRequest(page_size=1), metadata=auth(key))
    client = Client(channel, key)
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    client.UpdateAdvance(
        pb.UpdateAdvanceRequest(
            advance=pb.Advance(key=draft.key, items=draft.items),
            update_mask=FieldMask(paths=["items"]),
        )
    )
    client.SubmitAdvance(pb.SubmitAdvanceRequest(key=draft.key))
    client.apply(draft.key, "10.00", "INV-1")
    client.UnapplyAdvance(pb.UnapplyAdvanceRequest(key=draft.key, invoice_number="INV-1"))
    reversed_ = client.create()
    client.ReverseAdvance(pb.ReverseAdvanceRequest(key=reversed_.key, reversed_date="2024-06-20"))
    deleted = client.create()
    client.DeleteAdvance(pb.DeleteAdvanceRequest(key=deleted.key))
    client.get(draft.key)
    client.ListAdvances(pb.ListAdvancesRequest(view=pb.ADVANCE_VIEW_FULL, customer_id="C-00019"))

    checked, on_tables = 0, set()
    for statement, binds in statements:
        tables = {t for t in TENANT_TABLES if re.search(rf"\b{t}\b", statement)}
        if not tables or ACROSS_TENANTS.search(statement):
            continue
        checked += 1
        on_tables |= tables
        inserted = re.match(r"\s*INSERT INTO (\w+) \(([^)]*)\)", statement)
        if inserted and not re.search(r"\bSELECT\b", statement):
            columns = {c.strip() for c in inserted.group(2).split(",")}
            assert {"entity_id", "mode"} <= columns, f"a new row without its tenant:\n{statement}"
        else:  # every other statement is limited by of_tenant's parameters
            assert {"b_entity_id", "b_mode"} <= binds, f"not limited to a tenant:\n{statement}"
    assert on_tables == TENANT_TABLES
    names = ", ".join(sorted(on_tables))
    proof(f"{checked} statements on the {len(on_tables)} tenant tables ({names}): each limited "
          "to the caller's tenant")  # fmt: skip
