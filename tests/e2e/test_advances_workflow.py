"""Submit, reverse, apply, unapply, update and delete: every rule and transition."""

from datetime import date

import grpc
import pytest
from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask

from service.db import models
from tests.advances import advance_message, configure, count_rows, item, payload
from tests.tools import violations

S = pb.AdvanceState
FAILED = grpc.StatusCode.FAILED_PRECONDITION


def draft(client):
    return client.create(payload(state="ADVANCE_STATE_DRAFT"))


def reverse(client, key, day="2024-06-20"):
    return client.ReverseAdvance(
        pb.ReverseAdvanceRequest(key=key, reversed_date=day, memo="bounced")
    )


def update(client, advance, mask=None, **fields):
    message = advance_message(fields)
    message.key = advance.key
    request = pb.UpdateAdvanceRequest(advance=message)
    if mask is not None:
        request.update_mask.CopyFrom(FieldMask(paths=mask))
    return request


def test_submit_posts_a_draft_once(client):
    advance = draft(client)
    posted = client.SubmitAdvance(pb.SubmitAdvanceRequest(key=advance.key))
    assert posted.state == S.ADVANCE_STATE_POSTED
    assert posted.etag != advance.etag
    error = client.fails("SubmitAdvance", pb.SubmitAdvanceRequest(key=advance.key))
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_NOT_DRAFT")
    assert error.info.metadata["state"] == "ADVANCE_STATE_POSTED"  # the name clients use


def test_submit_in_a_closed_period_is_refused(client, database):
    advance = draft(client)
    configure(database, gl_closed_through=date(2024, 6, 30))
    error = client.fails("SubmitAdvance", pb.SubmitAdvanceRequest(key=advance.key))
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    assert client.get(advance.key).state == S.ADVANCE_STATE_DRAFT


def test_apply_partially_then_fully(client):
    advance = client.create(payload(items=[item("300.00"), item("200.00")]))
    partial = client.apply(advance.key, "125.50", "INV-1")
    assert partial.state == S.ADVANCE_STATE_PARTIALLY_APPLIED
    info = partial.payment_information
    assert (info.total_paid, info.txn_total_paid, info.total_due, info.total_txn_amount_due) == (
        "125.50", "125.50", "374.50", "374.50",
    )  # fmt: skip
    assert [(a.invoice_number, a.amount, a.applied_date) for a in partial.applications] == [
        ("INV-1", "125.50", "2024-06-20")
    ]
    error = client.fails(
        "ApplyAdvance",
        pb.ApplyAdvanceRequest(
            key=advance.key, invoice_number="INV-2", amount="374.51", applied_date="2024-06-21"
        ),
    )
    assert (error.code, error.info.reason) == (FAILED, "AMOUNT_EXCEEDS_DUE")
    assert error.info.metadata["total_txn_amount_due"] == "374.50"
    full = client.apply(advance.key, "374.50", "INV-2")
    assert full.state == S.ADVANCE_STATE_FULLY_APPLIED
    assert full.payment_information.total_due == "0.00"
    error = client.fails(
        "ApplyAdvance",
        pb.ApplyAdvanceRequest(
            key=advance.key, invoice_number="INV-3", amount="0.01", applied_date="2024-06-21"
        ),
    )
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_FULLY_APPLIED")


def test_applying_twice_to_one_invoice_records_two_applications(client):
    advance = client.create()
    client.apply(advance.key, "100", "INV-9")
    again = client.apply(advance.key, "50.25", "INV-9")
    assert [(a.invoice_number, a.amount) for a in again.applications] == [
        ("INV-9", "100.00"),
        ("INV-9", "50.25"),
    ]
    assert len({a.key for a in again.applications}) == 2
    assert again.payment_information.total_paid == "150.25"


def test_foreign_currency_applications_never_leave_a_cent(client):
    body = payload(
        paymentInformation={
            "paymentDate": "2024-06-13", "receiptDate": "2024-06-13",
            "paymentMethod": "PAYMENT_METHOD_EFT",
            "currency": {"txnCurrency": "EUR", "exchangeRate": "1.3333"},
        },
        items=[item("0.03"), item("0.03"), item("0.03")],
    )  # fmt: skip
    advance = client.create(body)
    assert advance.total_entered == "0.12"  # 3 x round(0.039999) = 3 x 0.04
    for invoice in ("A", "B", "C"):
        last = client.apply(advance.key, "0.03", invoice)
    assert last.state == S.ADVANCE_STATE_FULLY_APPLIED
    assert last.payment_information.total_due == "0.00"
    assert last.payment_information.total_paid == "0.12"


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"amount": "1e5"}, "amount", "AMOUNT_INVALID"),
        ({"amount": "12.345"}, "amount", "AMOUNT_INVALID"),
        ({"amount": "-3"}, "amount", "AMOUNT_INVALID"),
        ({"amount": "0"}, "amount", "AMOUNT_NOT_POSITIVE"),
        ({"amount": ""}, "amount", "FIELD_REQUIRED"),
        ({"invoice_number": ""}, "invoice_number", "FIELD_REQUIRED"),
        ({"applied_date": "2024-02-30"}, "applied_date", "DATE_INVALID"),
        ({"applied_date": ""}, "applied_date", "FIELD_REQUIRED"),
        ({"applied_date": "2024-06-12"}, "applied_date", "DATE_BEFORE_RECEIPT_DATE"),
        ({"key": "x"}, "key", "KEY_INVALID"),
    ],
)
def test_apply_rejects_bad_input_and_writes_nothing(
    client, database, request_fields, field, reason
):
    advance = client.create()
    fields = {
        "key": advance.key,
        "invoice_number": "INV-1",
        "amount": "10",
        "applied_date": "2024-06-20",
    }
    error = client.fails("ApplyAdvance", pb.ApplyAdvanceRequest(**{**fields, **request_fields}))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {field: reason}
    assert count_rows(database, models.AdvanceApplication) == 0
    assert client.get(advance.key) == advance


def test_apply_needs_a_posted_advance_and_an_open_period(client, database):
    advance = draft(client)
    error = client.fails(
        "ApplyAdvance",
        pb.ApplyAdvanceRequest(
            key=advance.key, invoice_number="I", amount="1", applied_date="2024-06-20"
        ),
    )
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_NOT_POSTED")
    posted = client.create()
    configure(database, gl_closed_through=date(2024, 6, 20))
    error = client.fails(
        "ApplyAdvance",
        pb.ApplyAdvanceRequest(
            key=posted.key, invoice_number="I", amount="1", applied_date="2024-06-20"
        ),
    )
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    assert (
        client.apply(posted.key, "1", "I", "2024-06-21").state == S.ADVANCE_STATE_PARTIALLY_APPLIED
    )


def test_unapply_restores_the_totals_and_the_advance_is_frozen_for_good(client):
    advance = client.create()
    client.apply(advance.key, "100", "INV-1")
    client.apply(advance.key, "400", "INV-2")
    one_left = client.UnapplyAdvance(
        pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="INV-2")
    )
    assert one_left.state == S.ADVANCE_STATE_PARTIALLY_APPLIED
    assert one_left.payment_information.total_due == "400.00"
    none_left = client.UnapplyAdvance(
        pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="INV-1")
    )
    assert none_left.state == S.ADVANCE_STATE_POSTED
    info = none_left.payment_information
    assert (info.total_paid, info.txn_total_paid, info.total_due) == ("0.00", "0.00", "500.00")
    assert list(none_left.applications) == []
    error = client.fails(
        "UpdateAdvance", update(client, none_left, ["description"], description="x")
    )
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_WAS_APPLIED")
    error = client.fails("DeleteAdvance", pb.DeleteAdvanceRequest(key=advance.key))
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_WAS_APPLIED")
    # It can still be applied again, and reversed once nothing is applied.
    assert client.apply(advance.key, "500", "INV-3").state == S.ADVANCE_STATE_FULLY_APPLIED
    client.UnapplyAdvance(pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="INV-3"))
    assert reverse(client, advance.key).state == S.ADVANCE_STATE_REVERSED


def test_unapply_of_an_invoice_not_applied(client):
    advance = client.create()
    error = client.fails(
        "UnapplyAdvance", pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="INV-404")
    )
    assert (error.code, error.info.reason) == (FAILED, "NOT_APPLIED_TO_INVOICE")
    error = client.fails("UnapplyAdvance", pb.UnapplyAdvanceRequest(key=advance.key))
    assert violations(error) == {"invoice_number": "FIELD_REQUIRED"}


def test_reverse_a_posted_advance(client):
    advance = client.create()
    reversed_ = reverse(client, advance.key, "2024-06-13")  # the receipt date itself is fine
    assert reversed_.state == S.ADVANCE_STATE_REVERSED
    assert reversed_.reversed_date == "2024-06-13"
    error = client.fails(
        "ReverseAdvance", pb.ReverseAdvanceRequest(key=advance.key, reversed_date="2024-06-14")
    )
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_REVERSED")
    for method, request, reason in [
        ("SubmitAdvance", pb.SubmitAdvanceRequest(key=advance.key), "ADVANCE_NOT_DRAFT"),
        (
            "ApplyAdvance",
            pb.ApplyAdvanceRequest(
                key=advance.key, invoice_number="I", amount="1", applied_date="2024-06-20"
            ),
            "ADVANCE_REVERSED",
        ),
        (
            "UpdateAdvance",
            update(client, advance, ["description"], description="x"),
            "ADVANCE_REVERSED",
        ),
        ("DeleteAdvance", pb.DeleteAdvanceRequest(key=advance.key), "ADVANCE_REVERSED"),
    ]:
        error = client.fails(method, request)
        assert (error.code, error.info.reason) == (FAILED, reason), method


def test_reverse_rules(client, database):
    error = client.fails(
        "ReverseAdvance",
        pb.ReverseAdvanceRequest(key=draft(client).key, reversed_date="2024-06-20"),
    )
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_NOT_POSTED")
    applied = client.create()
    client.apply(applied.key, "1")
    error = client.fails(
        "ReverseAdvance", pb.ReverseAdvanceRequest(key=applied.key, reversed_date="2024-06-20")
    )
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_APPLIED")
    posted = client.create()
    error = client.fails("ReverseAdvance", pb.ReverseAdvanceRequest(key=posted.key))
    assert violations(error) == {"reversed_date": "FIELD_REQUIRED"}
    error = client.fails(
        "ReverseAdvance", pb.ReverseAdvanceRequest(key=posted.key, reversed_date="2024-06-12")
    )
    assert violations(error) == {"reversed_date": "DATE_BEFORE_RECEIPT_DATE"}
    configure(database, gl_closed_through=date(2024, 6, 30))
    error = client.fails(
        "ReverseAdvance", pb.ReverseAdvanceRequest(key=posted.key, reversed_date="2024-06-30")
    )
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    assert reverse(client, posted.key, "2024-07-01").state == S.ADVANCE_STATE_REVERSED


def test_update_with_a_mask_writes_only_the_masked_fields(client):
    advance = client.create()
    request = update(
        client, advance, ["reference_number"], referenceNumber="DOC1234", description="ignored"
    )
    updated = client.UpdateAdvance(request)
    assert (updated.reference_number, updated.description) == ("DOC1234", "")
    assert updated.etag != advance.etag
    assert updated.audit.update_time.ToDatetime() >= advance.audit.update_time.ToDatetime()
    assert client.get(advance.key) == updated


def test_update_without_a_mask_writes_the_populated_fields(client):
    advance = client.create(payload(description="before"))
    updated = client.UpdateAdvance(update(client, advance, referenceNumber="DOC1234"))
    assert (updated.reference_number, updated.description) == ("DOC1234", "before")
    # A client may send back what it read: output-only fields are ignored without a mask.
    echoed = pb.Advance()
    echoed.CopyFrom(updated)
    echoed.description = "after"
    echoed.state = S.ADVANCE_STATE_FULLY_APPLIED
    again = client.UpdateAdvance(pb.UpdateAdvanceRequest(advance=echoed))
    assert again.description == "after" and again.state == S.ADVANCE_STATE_POSTED


def test_update_replacing_items_recomputes_the_totals(client):
    advance = client.create()
    updated = client.UpdateAdvance(
        update(client, advance, ["items"], items=[item("10.10"), item("20.20")])
    )
    assert updated.total_entered == updated.txn_total_entered == "30.30"
    assert updated.payment_information.total_due == "30.30"
    assert [(i.line_number, i.base_amount) for i in updated.items] == [(1, "10.10"), (2, "20.20")]
    assert {i.key for i in updated.items}.isdisjoint({i.key for i in advance.items})


def test_update_of_a_group_path_and_the_whole_object(client):
    advance = client.create(payload(description="keep", referenceNumber="R1"))
    info = {
        "paymentDate": "2024-07-01",
        "receiptDate": "2024-07-02",
        "paymentMethod": "PAYMENT_METHOD_ACH",
    }
    updated = client.UpdateAdvance(
        update(client, advance, ["payment_information"], paymentInformation=info)
    )
    assert updated.payment_information.receipt_date == "2024-07-02"
    assert updated.payment_information.financial_entity.id == ""  # the group was replaced whole
    assert updated.description == "keep"
    whole = client.UpdateAdvance(update(client, advance, ["*"], **payload(description="new")))
    assert (whole.description, whole.reference_number) == ("new", "")


@pytest.mark.parametrize(
    ("mask", "field", "reason"),
    [
        (["state"], "update_mask.paths[0]", "FIELD_NOT_WRITABLE"),
        (["description", "total_entered"], "update_mask.paths[1]", "FIELD_NOT_WRITABLE"),
        (["payment_information.total_due"], "update_mask.paths[0]", "FIELD_NOT_WRITABLE"),
        (["advance_number"], "update_mask.paths[0]", "FIELD_NOT_WRITABLE"),
        (["audit.create_time"], "update_mask.paths[0]", "FIELD_NOT_WRITABLE"),
        (["colour"], "update_mask.paths[0]", "FIELD_MASK_PATH_UNKNOWN"),
        (["customer.idd"], "update_mask.paths[0]", "FIELD_MASK_PATH_UNKNOWN"),
        (["items.txn_amount"], "update_mask.paths[0]", "FIELD_MASK_PATH_INVALID"),
    ],
)
def test_update_mask_rejects_paths_it_cannot_write(client, mask, field, reason):
    advance = client.create()
    error = client.fails("UpdateAdvance", update(client, advance, mask, description="x"))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {field: reason}
    assert client.get(advance.key) == advance


@pytest.mark.parametrize(
    ("mask", "fields", "field", "reason"),
    [
        (["items"], {"items": [item("12.345")]}, "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (["items"], {}, "advance.items", "FIELD_REQUIRED"),
        (["customer.id"], {}, "advance.customer.id", "FIELD_REQUIRED"),
        (
            ["payment_information.payment_date"],
            {"paymentInformation": {"paymentDate": "2024-02-30"}},
            "advance.payment_information.payment_date",
            "DATE_INVALID",
        ),
    ],
)
def test_update_rejects_bad_values_and_writes_nothing(client, mask, fields, field, reason):
    advance = client.create()
    error = client.fails("UpdateAdvance", update(client, advance, mask, **fields))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {field: reason}
    assert client.get(advance.key) == advance


def test_update_ignores_bad_values_outside_the_mask(client):
    advance = client.create()
    request = update(client, advance, ["description"], description="fine", items=[item("1e5")])
    assert client.UpdateAdvance(request).description == "fine"


def test_update_with_a_stale_etag_is_aborted(client):
    advance = client.create()
    first = update(client, advance, ["description"], description="first")
    first.advance.etag = advance.etag
    client.UpdateAdvance(first)
    second = update(client, advance, ["description"], description="second")
    second.advance.etag = advance.etag  # stale now
    error = client.fails("UpdateAdvance", second)
    assert (error.code, error.info.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    assert client.get(advance.key).description == "first"


def test_update_is_refused_while_applied_and_in_a_closed_period(client, database):
    advance = client.create()
    client.apply(advance.key, "1")
    error = client.fails("UpdateAdvance", update(client, advance, ["description"], description="x"))
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_APPLIED")
    other = client.create()
    configure(database, gl_closed_through=date(2024, 6, 13))
    error = client.fails("UpdateAdvance", update(client, other, ["description"], description="x"))
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    configure(database, gl_closed_through=date(2024, 6, 1))
    moved = update(
        client,
        other,
        ["payment_information.receipt_date"],
        paymentInformation={"receiptDate": "2024-05-31"},
    )
    error = client.fails("UpdateAdvance", moved)
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")


def test_update_rules_follow_the_entity_settings(client, database):
    advance = client.create()
    configure(database, ar_account_labels=True)
    error = client.fails("UpdateAdvance", update(client, advance, ["items"], items=[item()]))
    assert violations(error) == {"advance.items[0].account_label.id": "ACCOUNT_LABEL_REQUIRED"}


def test_update_of_a_missing_advance(client):
    missing = pb.Advance(key="424242", description="x")
    error = client.fails("UpdateAdvance", pb.UpdateAdvanceRequest(advance=missing))
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "ADVANCE_NOT_FOUND")
    error = client.fails(
        "UpdateAdvance", pb.UpdateAdvanceRequest(advance=pb.Advance(description="x"))
    )
    assert violations(error) == {"advance.key": "FIELD_REQUIRED"}


def test_delete_draft_and_posted(client, database):
    made = (draft(client), client.create())
    draft_key, posted_key = (advance.key for advance in made)
    for advance in made:
        client.DeleteAdvance(pb.DeleteAdvanceRequest(key=advance.key, etag=advance.etag))
        error = client.fails("GetAdvance", pb.GetAdvanceRequest(key=advance.key))
        assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "ADVANCE_NOT_FOUND")
        error = client.fails("DeleteAdvance", pb.DeleteAdvanceRequest(key=advance.key))
        assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "ADVANCE_NOT_FOUND")
    assert count_rows(database, models.Advance) == count_rows(database, models.AdvanceLine) == 0
    # A deleted key is not handed out again: keys are random among 8 x 10^15 (db/ids.py).
    assert client.create().key not in (draft_key, posted_key)


def test_delete_rules(client, database):
    applied = client.create()
    client.apply(applied.key, "1")
    error = client.fails("DeleteAdvance", pb.DeleteAdvanceRequest(key=applied.key))
    assert (error.code, error.info.reason) == (FAILED, "ADVANCE_APPLIED")
    stale = client.create()
    client.UpdateAdvance(update(client, stale, ["description"], description="changed"))
    error = client.fails("DeleteAdvance", pb.DeleteAdvanceRequest(key=stale.key, etag=stale.etag))
    assert (error.code, error.info.reason) == (grpc.StatusCode.ABORTED, "ETAG_MISMATCH")
    configure(database, gl_closed_through=date(2024, 6, 30))
    error = client.fails("DeleteAdvance", pb.DeleteAdvanceRequest(key=stale.key))
    assert (error.code, error.info.reason) == (FAILED, "PERIOD_CLOSED")
    assert count_rows(database, models.Advance) == 2
    error = client.fails("DeleteAdvance", pb.DeleteAdvanceRequest(key=""))
    assert violations(error) == {"key": "FIELD_REQUIRED"}
