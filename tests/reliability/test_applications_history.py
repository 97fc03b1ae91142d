"""Each application is its own record with its own date: a second application to an
invoice no longer overwrites the first's date, unapplying respects each one's period, and
unapplied applications stay as history. Applications never reach across advances or
tenants. Existing applications carry over a migration.

(Applying 10.00 on 2024-07-01 and 15.00 on 2024-08-01 to INV-X used to leave one 25.00
application dated 2024-08-01: with the books closed through 2024-07-15, unapplying it took
back money posted in the closed period.)"""

from datetime import UTC, date, datetime

import grpc
import pytest
from alembic import command
from arcus.receivables.v1 import advances_pb2 as pb
from sqlalchemy import insert, select, text

from service.db import models
from service.db.migrate import alembic_config, upgrade
from tests.advances import Client, configure, payload

FAILED = grpc.StatusCode.FAILED_PRECONDITION
S = pb.AdvanceState


def unapply(client: Client, key: str, invoice: str = "", application: str = "") -> pb.Advance:
    return client.UnapplyAdvance(
        pb.UnapplyAdvanceRequest(key=key, invoice_number=invoice, application_key=application)
    )


def dated(applications) -> list[tuple[str, str, str]]:
    return [(a.invoice_number, a.amount, a.applied_date) for a in applications]


def test_two_applications_to_one_invoice_keep_their_own_dates(client, database, proof):
    advance = client.create(payload(items=[{**payload()["items"][0], "txnAmount": "100"}]))
    client.apply(advance.key, "10.00", "INV-X", "2024-07-01")
    both = client.apply(advance.key, "15.00", "INV-X", "2024-08-01")
    assert dated(both.applications) == [
        ("INV-X", "10.00", "2024-07-01"),
        ("INV-X", "15.00", "2024-08-01"),
    ]
    july, august = both.applications
    assert july.key != august.key and july.apply_time.seconds and july.applied_by
    assert both.payment_information.total_paid == "25.00"

    # Books closed through mid-July: the July application cannot be taken back, so
    # unapplying the invoice as a whole changes nothing...
    configure(database, gl_closed_through=date(2024, 7, 15))
    whole_invoice = pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="INV-X")
    error = client.fails("UnapplyAdvance", whole_invoice)
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    assert error.info.metadata["application_key"] == july.key
    assert error.info.metadata["date"] == "2024-07-01"
    assert client.get(advance.key) == both

    # ...but the August one, in an open period, can be unapplied by its key.
    after = unapply(client, advance.key, application=august.key)
    assert dated(after.applications) == [("INV-X", "10.00", "2024-07-01")]
    assert after.payment_information.total_paid == "10.00"
    assert after.state == S.ADVANCE_STATE_PARTIALLY_APPLIED
    [history] = after.unapplied_applications
    assert (history.key, history.amount) == (august.key, "15.00")
    assert history.applied_date == "2024-08-01"
    assert history.unapply_time.seconds >= history.apply_time.seconds and history.unapplied_by

    # Named again, it is already unapplied; the July one stays out of reach.
    error = client.fails(
        "UnapplyAdvance", pb.UnapplyAdvanceRequest(key=advance.key, application_key=august.key)
    )
    assert (error.code, error.info.reason) == (FAILED, "APPLICATION_ALREADY_UNAPPLIED")
    error = client.fails(
        "UnapplyAdvance", pb.UnapplyAdvanceRequest(key=advance.key, application_key=july.key)
    )
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    assert client.get(advance.key) == after
    proof(
        "10.00 on 2024-07-01 and 15.00 on 2024-08-01 to INV-X: two records; books closed "
        "through 2024-07-15: the invoice as a whole and the July one refused, the August one "
        "unapplied and kept as history"
    )


def test_in_the_other_order_the_open_period_application_can_still_be_unapplied(client, database):
    advance = client.create()
    first = client.apply(advance.key, "15.00", "INV-X", "2024-08-01").applications[0]
    client.apply(advance.key, "10.00", "INV-X", "2024-07-01")
    configure(database, gl_closed_through=date(2024, 7, 15))
    after = unapply(client, advance.key, invoice="INV-X", application=first.key)
    assert dated(after.applications) == [("INV-X", "10.00", "2024-07-01")]
    assert dated(after.unapplied_applications) == [("INV-X", "15.00", "2024-08-01")]


def test_unapplying_an_invoice_takes_back_all_its_applications_in_open_periods(client):
    advance = client.create()
    client.apply(advance.key, "10.00", "INV-1", "2024-07-01")
    client.apply(advance.key, "20.00", "INV-2", "2024-07-02")
    client.apply(advance.key, "30.00", "INV-1", "2024-07-03")
    after = unapply(client, advance.key, invoice="INV-1")
    assert dated(after.applications) == [("INV-2", "20.00", "2024-07-02")]
    assert dated(after.unapplied_applications) == [
        ("INV-1", "10.00", "2024-07-01"),
        ("INV-1", "30.00", "2024-07-03"),
    ]
    assert after.payment_information.total_paid == "20.00"
    # An application key of another invoice than the one named is refused.
    other = after.applications[0].key
    error = client.fails(
        "UnapplyAdvance",
        pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="INV-1", application_key=other),
    )
    assert (error.code, error.info.reason) == (FAILED, "NOT_APPLIED_TO_INVOICE")
    error = client.fails(
        "UnapplyAdvance", pb.UnapplyAdvanceRequest(key=advance.key, application_key="12345")
    )
    assert (error.code, error.info.reason) == (FAILED, "APPLICATION_NOT_FOUND")


def test_an_advance_holds_a_bounded_number_of_applications(client, monkeypatch):
    from service.advances import domain

    monkeypatch.setattr(domain, "MAX_APPLICATIONS", 3)
    advance = client.create()
    client.apply(advance.key, "1.00", "INV-1")
    applied = client.apply(advance.key, "1.00", "INV-2")
    unapply(client, advance.key, invoice="INV-2")  # history counts too
    client.apply(advance.key, "1.00", "INV-3")
    error = client.fails(
        "ApplyAdvance",
        pb.ApplyAdvanceRequest(
            key=advance.key, invoice_number="INV-4", amount="1.00", applied_date="2024-06-20"
        ),
    )
    assert (error.code, error.info.reason) == (FAILED, "TOO_MANY_APPLICATIONS")
    assert len(applied.applications) == 2


@pytest.mark.parametrize(
    ("entity", "mode"), [("acme", "live"), ("acme", "test"), ("globex", "live")]
)
def test_unapply_never_reaches_another_advance_or_tenant(channel, keys, entity, mode, proof):
    mine = Client(channel, keys.create("acme", mode="live"))
    theirs = Client(channel, keys.create(entity, mode=mode))
    mine_one, mine_two = mine.create(), mine.create()
    their_advance = theirs.create()
    for client, advance in [(mine, mine_one), (mine, mine_two), (theirs, their_advance)]:
        client.apply(advance.key, "50.00", "INV-SHARED")
    unapply(mine, mine_one.key, invoice="INV-SHARED")
    assert list(mine.get(mine_one.key).applications) == []
    assert dated(mine.get(mine_two.key).applications) == [("INV-SHARED", "50.00", "2024-06-20")]
    assert dated(theirs.get(their_advance.key).applications) == [
        ("INV-SHARED", "50.00", "2024-06-20")
    ]
    # Nor by key: another advance's application is not this advance's.
    other = mine.get(mine_two.key).applications[0].key
    error = mine.fails(
        "UnapplyAdvance", pb.UnapplyAdvanceRequest(key=mine_one.key, application_key=other)
    )
    assert error.info.reason in ("APPLICATION_NOT_FOUND", "APPLICATION_ALREADY_UNAPPLIED")
    proof(f"three advances (two of acme/live, one of {entity}/{mode}) on one invoice number: "
          "unapplying one left the others whole")  # fmt: skip


LEGACY_ADVANCE = text(
    "INSERT INTO advances (id, entity_id, mode, advance_number, state, customer_id, "
    "customer_name, reference_number, description, payment_date, receipt_date, "
    "payment_method, financial_entity_id, base_currency, txn_currency, exchange_rate, "
    "exchange_rate_type_id, advance_summary_id, gl_account_id, "
    "undeposited_gl_account_number, attachment_id, total_entered, txn_total_entered, "
    "total_paid, txn_total_paid, ever_applied, reversal_memo, version, create_time, "
    "update_time) VALUES (:id, 'acme', 'live', :number, 'partially_applied', 'C', '', '', "
    "'', '2024-06-13', '2024-06-13', 'cash', '', 'USD', '', '', '', '', '', '', '', 10000, "
    "10000, 2500, 2500, :applied, '', 2, :now, :now)"
)
NOW = datetime(2024, 7, 1, tzinfo=UTC)


def legacy_advance(conn, key: int) -> None:
    """An advance as an earlier version wrote it: a key from the shared sequence, 25.00 of
    100.00 applied to INV-X, all of it on 2024-08-01."""
    conn.execute(LEGACY_ADVANCE, {"id": key, "number": f"ADV-{key}", "applied": True, "now": NOW})


def test_existing_applications_carry_over_the_migration(database, proof):
    """Data written by the previous schema (0003): one application per invoice."""
    command.downgrade(alembic_config(database), "0003")
    try:
        with database.begin() as conn:
            conn.execute(insert(models.Entity).values(id="acme", create_time=NOW))
            legacy_advance(conn, 1)
            conn.execute(
                text(
                    "INSERT INTO advance_applications (id, advance_id, invoice_number, amount, "
                    "base_amount, applied_date, create_time) VALUES "
                    "(1, 1, 'INV-X', 2500, 2500, '2024-08-01', :now)"
                ),
                {"now": NOW},
            )
    finally:
        upgrade(database)
    with database.connect() as conn:
        [row] = conn.execute(select(models.AdvanceApplication.__table__)).all()
    assert (row.id, row.entity_id, row.mode, row.advance_id, row.amount, row.unapply_time) == (
        1, "acme", "live", 1, 2500, None,
    )  # fmt: skip
    proof("an application written by schema 0003 has its tenant and stays in effect after 0004")


def test_the_merged_application_migrates_and_the_old_key_still_works(channel, database, keys):
    """An advance made before keys were random keeps its key; its application, merged under
    the old rule, is one record that can still be unapplied."""
    key = keys.create("acme")
    with database.begin() as conn:
        legacy_advance(conn, 7)
        conn.execute(
            insert(models.AdvanceLine).values(
                id=70, entity_id="acme", mode="live", advance_id=7, line_number=1,
                gl_account_id="2200", gl_account_name="",
                account_label_id="", account_label_name="", txn_amount=10000,
                base_amount=10000, memo="", dimensions={"location": {"id": "CA", "name": ""}},
            )
        )  # fmt: skip
        conn.execute(
            insert(models.AdvanceApplication).values(
                id=71, entity_id="acme", mode="live", advance_id=7, invoice_number="INV-X",
                amount=2500, base_amount=2500, applied_date=date(2024, 8, 1), create_time=NOW,
            )
        )  # fmt: skip
    client = Client(channel, key)
    old = client.get("7")
    assert (old.key, old.items[0].key, old.applications[0].key) == ("7", "70", "71")
    after = unapply(client, "7", invoice="INV-X")
    assert after.payment_information.total_paid == "0.00"
    assert [a.key for a in after.unapplied_applications] == ["71"]
