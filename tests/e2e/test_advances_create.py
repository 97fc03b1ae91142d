"""CreateAdvance and GetAdvance end to end, on SQLite and PostgreSQL."""

from datetime import UTC, date, datetime

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.receivables.v1 import advances_pb2 as pb
from sqlalchemy import select, update

from service.db import models
from tests.advances import (
    Client,
    configure,
    count_rows,
    item,
    nothing_written,
    payload,
)
from tests.support import auth
from tests.tools import violations

STATE = pb.AdvanceState


def test_the_reference_create_example_creates_an_advance(client, database):
    configure(database, ar_automatic_summaries=True, ar_account_labels=True)
    created = client.create()
    assert created.key.isdigit() and created.id == created.key
    assert created.href == f"/objects/accounts-receivable/advance/{created.key}"
    assert created.state == STATE.ADVANCE_STATE_POSTED
    assert created.customer.id == "C-00019"
    assert created.advance_summary.id == "511"
    info = created.payment_information
    assert (info.payment_date, info.receipt_date) == ("2024-06-13", "2024-06-13")
    assert info.payment_method == pb.PAYMENT_METHOD_PRINTED_CHECK
    assert info.financial_entity.id == "BOA"
    assert (info.currency.base_currency, info.currency.txn_currency) == ("USD", "USD")
    assert info.currency.exchange_rate == "1"
    assert (created.total_entered, created.txn_total_entered) == ("500.00", "500.00")
    assert (info.total_paid, info.txn_total_paid, info.total_due, info.total_txn_amount_due) == (
        "0.00", "0.00", "500.00", "500.00",
    )  # fmt: skip
    assert (info.total_selected, info.txn_total_selected) == ("0.00", "0.00")
    [line] = created.items
    assert line.key.isdigit() and line.id == line.key and line.line_number == 1
    assert (line.gl_account.id, line.account_label.id) == ("2200", "Travel")
    assert (line.txn_amount, line.base_amount) == ("500.00", "500.00")
    assert line.dimensions.location.id == "CA"
    assert created.audit.create_time.seconds > 0
    assert created.audit.created_by and created.audit.created_by == created.audit.modified_by
    assert created.etag
    assert created.advance_number == ""  # the entity has no AR advance counter
    assert client.get(created.key) == created


def test_state_may_be_draft_on_create(client):
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    assert draft.state == STATE.ADVANCE_STATE_DRAFT


def test_totals_and_base_amounts_follow_the_exchange_rate(client):
    body = payload(
        paymentInformation={
            "paymentDate": "2024-06-13",
            "receiptDate": "2024-06-14",
            "paymentMethod": "PAYMENT_METHOD_EFT",
            "currency": {
                "txnCurrency": "EUR",
                "exchangeRate": "1.0825",
                "exchangeRateDate": "2024-06-13",
            },
        },
        items=[item("100.00"), item("0.02"), item("33.33", memo="retainer")],
    )
    created = client.create(body)
    # 100.00 x 1.0825 = 108.25; 0.02 x 1.0825 = 0.02165 -> 0.02; 33.33 x 1.0825 = 36.080...
    assert [line.base_amount for line in created.items] == ["108.25", "0.02", "36.08"]
    assert [line.line_number for line in created.items] == [1, 2, 3]
    assert created.txn_total_entered == "133.35"
    assert created.total_entered == "144.35"
    currency = created.payment_information.currency
    assert (currency.txn_currency, currency.exchange_rate, currency.exchange_rate_date) == (
        "EUR", "1.0825", "2024-06-13",
    )  # fmt: skip
    assert created.items[2].memo == "retainer"


def test_half_up_rounding(client):
    body = payload(
        paymentInformation={
            "paymentDate": "2024-06-13",
            "receiptDate": "2024-06-13",
            "paymentMethod": "PAYMENT_METHOD_ACH",
            "currency": {"txnCurrency": "GBP", "exchangeRate": "1.5"},
        },
        items=[item("0.01"), item("0.03")],
    )
    created = client.create(body)
    assert [line.base_amount for line in created.items] == ["0.02", "0.05"]  # 0.015, 0.045 up


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        (payload(customer=None), "advance.customer.id", "FIELD_REQUIRED"),
        (
            payload(
                paymentInformation={
                    "receiptDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                }
            ),
            "advance.payment_information.payment_date",
            "FIELD_REQUIRED",
        ),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                }
            ),
            "advance.payment_information.receipt_date",
            "FIELD_REQUIRED",
        ),
        (
            payload(paymentInformation={"paymentDate": "2024-06-13", "receiptDate": "2024-06-13"}),
            "advance.payment_information.payment_method",
            "FIELD_REQUIRED",
        ),
        (payload(items=None), "advance.items", "FIELD_REQUIRED"),
        (
            payload(items=[{"txnAmount": "5", "dimensions": {"location": {"id": "CA"}}}]),
            "advance.items[0].gl_account.id",
            "FIELD_REQUIRED",
        ),
        (
            payload(
                items=[
                    item(""),
                ]
            ),
            "advance.items[0].txn_amount",
            "FIELD_REQUIRED",
        ),
        (
            payload(items=[{"glAccount": {"id": "1"}, "txnAmount": "5"}]),
            "advance.items[0].dimensions.location.id",
            "FIELD_REQUIRED",
        ),
        (payload(items=[item("1e5")]), "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (payload(items=[item("12.345")]), "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (payload(items=[item("-3")]), "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (payload(items=[item(" 5")]), "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (payload(items=[item("1,000.00")]), "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (payload(items=[item("NaN")]), "advance.items[0].txn_amount", "AMOUNT_INVALID"),
        (payload(items=[item("0.00")]), "advance.items[0].txn_amount", "AMOUNT_NOT_POSITIVE"),
        (
            payload(items=[item("10000000000000.00")]),
            "advance.items[0].txn_amount",
            "AMOUNT_TOO_LARGE",
        ),
        (payload(items=[item(), item("2.5.0")]), "advance.items[1].txn_amount", "AMOUNT_INVALID"),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-02-30",
                    "receiptDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                }
            ),
            "advance.payment_information.payment_date",
            "DATE_INVALID",
        ),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "receiptDate": "13/06/2024",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                }
            ),
            "advance.payment_information.receipt_date",
            "DATE_INVALID",
        ),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "receiptDate": "2024-06-13",
                    "paymentMethod": 99,
                }
            ),
            "advance.payment_information.payment_method",
            "ENUM_VALUE_UNKNOWN",
        ),
        (payload(state=42), "advance.state", "ENUM_VALUE_UNKNOWN"),
        (
            payload(state="ADVANCE_STATE_FULLY_APPLIED"),
            "advance.state",
            "STATE_NOT_ALLOWED_ON_CREATE",
        ),
        (payload(state="ADVANCE_STATE_REVERSED"), "advance.state", "STATE_NOT_ALLOWED_ON_CREATE"),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "receiptDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                    "currency": {"txnCurrency": "euro"},
                }
            ),
            "advance.payment_information.currency.txn_currency",
            "CURRENCY_INVALID",
        ),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "receiptDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                    "currency": {"txnCurrency": "EUR"},
                }
            ),
            "advance.payment_information.currency.exchange_rate",
            "EXCHANGE_RATE_REQUIRED",
        ),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "receiptDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                    "currency": {"txnCurrency": "EUR", "exchangeRate": "-1"},
                }
            ),
            "advance.payment_information.currency.exchange_rate",
            "EXCHANGE_RATE_INVALID",
        ),
        (
            payload(
                paymentInformation={
                    "paymentDate": "2024-06-13",
                    "receiptDate": "2024-06-13",
                    "paymentMethod": "PAYMENT_METHOD_CASH",
                    "currency": {"exchangeRate": "2"},
                }
            ),
            "advance.payment_information.currency.exchange_rate",
            "EXCHANGE_RATE_MUST_BE_ONE",
        ),
        *(
            (
                payload(
                    paymentInformation={
                        "paymentDate": "2024-06-13",
                        "receiptDate": "2024-06-13",
                        "paymentMethod": "PAYMENT_METHOD_CASH",
                        "currency": currency,
                    },
                    items=[item("100.00")],
                ),
                f"advance.{path}",
                reason,
            )
            for currency, path, reason in [
                (
                    {"txnCurrency": "XYZ", "exchangeRate": "2"},
                    "payment_information.currency.txn_currency",
                    "CURRENCY_UNKNOWN",
                ),
                (
                    {"txnCurrency": "EUR", "exchangeRate": "0.0000000001"},
                    "payment_information.currency.exchange_rate",
                    "EXCHANGE_RATE_OUT_OF_RANGE",
                ),
                (
                    {"txnCurrency": "EUR", "exchangeRate": "1.0825000001"},
                    "payment_information.currency.exchange_rate",
                    "EXCHANGE_RATE_TOO_PRECISE",
                ),
                (
                    {"txnCurrency": "JPY", "exchangeRate": "0.000001"},
                    "items[0].txn_amount",
                    "BASE_AMOUNT_ZERO",
                ),
            ]
        ),
        (payload(description="x" * 1001), "advance.description", "TEXT_TOO_LONG"),
        (payload(customer={"id": "C\n1"}), "advance.customer.id", "TEXT_NOT_PRINTABLE"),
        (payload(advanceNumber="A" * 65), "advance.advance_number", "TEXT_TOO_LONG"),
        (payload(items=[item()] * 501), "advance.items", "TOO_MANY_ITEMS"),
    ],
)
def test_bad_input_is_invalid_argument_and_writes_nothing(client, database, body, field, reason):
    error = client.create_fails(body)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error).get(field) == reason, error.violations
    assert error.info.domain == "arcus.receivables.v1"
    assert nothing_written(database)


def test_every_problem_is_reported_at_once(client):
    body = {
        "paymentInformation": {"paymentDate": "2024-02-30", "paymentMethod": 7},
        "items": [{"txnAmount": "1e5"}, {"txnAmount": "12.345", "glAccount": {"id": "1"}}],
    }
    error = client.create_fails(body)
    assert violations(error) == {
        "advance.customer.id": "FIELD_REQUIRED",
        "advance.payment_information.payment_date": "DATE_INVALID",
        "advance.payment_information.receipt_date": "FIELD_REQUIRED",
        "advance.payment_information.payment_method": "ENUM_VALUE_UNKNOWN",
        "advance.items[0].gl_account.id": "FIELD_REQUIRED",
        "advance.items[0].txn_amount": "AMOUNT_INVALID",
        "advance.items[0].dimensions.location.id": "FIELD_REQUIRED",
        "advance.items[1].txn_amount": "AMOUNT_INVALID",
        "advance.items[1].dimensions.location.id": "FIELD_REQUIRED",
    }


def test_automatic_summaries_need_a_financial_entity_or_undeposited_account(client, database):
    configure(database, ar_automatic_summaries=True)
    info = {
        "paymentDate": "2024-06-13",
        "receiptDate": "2024-06-13",
        "paymentMethod": "PAYMENT_METHOD_CASH",
    }
    error = client.create_fails(payload(paymentInformation=info))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    reason = "FINANCIAL_ENTITY_OR_UNDEPOSITED_ACCOUNT_REQUIRED"
    assert violations(error) == {"advance.payment_information.financial_entity.id": reason}
    assert nothing_written(database)
    created = client.create(
        payload(paymentInformation=info, glAccount={"undepositedGLAccountNumber": "1070"})
    )
    assert created.gl_account.undeposited_gl_account_number == "1070"
    configure(database, ar_automatic_summaries=False)
    assert client.create(payload(paymentInformation=info)).key


def test_account_labels_need_a_label_on_every_item(client, database):
    configure(database, ar_account_labels=True)
    error = client.create_fails(payload(items=[item(accountLabel={"id": "Travel"}), item()]))
    assert violations(error) == {"advance.items[1].account_label.id": "ACCOUNT_LABEL_REQUIRED"}
    assert nothing_written(database)
    assert client.create(payload(items=[item(accountLabel={"id": "Travel", "name": "Travel"})])).key


@pytest.mark.parametrize("closed", ["2024-06-13", "2024-12-31"])
def test_nothing_is_created_in_a_closed_period(client, database, closed):
    configure(database, gl_closed_through=date.fromisoformat(closed))
    error = client.create_fails(payload())
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.info.reason == "PERIOD_CLOSED"
    assert nothing_written(database)
    configure(database, gl_closed_through=date(2024, 6, 12))
    assert client.create(payload()).key


def _advance_counter(channel, key, advance_to=41):
    from arcus.counters.v1 import counters_pb2_grpc

    counters = counters_pb2_grpc.CounterServiceStub(channel)
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(
            counter_type=cpb.COUNTER_TYPE_AR_ADVANCE,
            advance_to=advance_to,
            prefix="ADV-",
            padding=4,
        ),
        metadata=auth(key),
    )
    return lambda: (
        counters.GetCounter(
            cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE), metadata=auth(key)
        ).current_value
    )


def test_numbers_come_from_the_ar_advance_counter_and_failures_burn_none(
    client, channel, key, database
):
    current = _advance_counter(channel, key)
    assert client.create().advance_number == "ADV-0042"
    configure(database, gl_closed_through=date(2024, 12, 31))
    error = client.create_fails(payload())
    assert (error.code, error.info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PERIOD_CLOSED")
    configure(database, gl_closed_through=None)
    error = client.create_fails(payload(items=[item("-1")]))
    assert violations(error) == {"advance.items[0].txn_amount": "AMOUNT_INVALID"}  # no sign
    assert current() == 42
    assert client.create().advance_number == "ADV-0043"


def test_a_supplied_number_is_used_and_must_be_unique(client, channel, key, database):
    current = _advance_counter(channel, key)
    assert client.create(payload(advanceNumber="OLD-7")).advance_number == "OLD-7"
    assert current() == 41  # a supplied number takes none from the counter
    error = client.create_fails(payload(advanceNumber="OLD-7"))
    assert error.code == grpc.StatusCode.ALREADY_EXISTS
    assert error.info.reason == "ADVANCE_NUMBER_EXISTS"
    assert count_rows(database, models.Advance) == 1


def test_a_supplied_number_in_the_counters_format_advances_it(client, channel, key, database):
    """Migrated advances loaded in any order: the counter follows the highest, audited."""
    current = _advance_counter(channel, key)
    for number in ("ADV-0042", "ADV-0050", "ADV-0045", "LEGACY-9999", "ADV-77"):
        assert client.create(payload(advanceNumber=number)).advance_number == number
    assert current() == 50  # "LEGACY-9999" and "ADV-77" (3 digits short) are another form
    assert client.create().advance_number == "ADV-0051"
    with database.connect() as conn:
        moved = conn.execute(
            select(models.CounterEvent.old_value, models.CounterEvent.new_value)
            .where(models.CounterEvent.reason == "supplied advance number")
            .order_by(models.CounterEvent.id)
        ).all()
    assert [tuple(row) for row in moved] == [(41, 42), (42, 50)]


def test_an_issued_number_already_taken_rolls_back_and_burns_nothing(
    client, channel, key, database
):
    # A yearly counter whose numbers do not show their year: a supplied number cannot be
    # placed in a period, so it is stored as given and the counter stays where it was.
    from arcus.counters.v1 import counters_pb2_grpc

    counters = counters_pb2_grpc.CounterServiceStub(channel)
    year = str(datetime.now(UTC).year)
    counters.AdvanceCounter(
        cpb.AdvanceCounterRequest(
            counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=41, prefix="ADV-", padding=4,
            reset=cpb.COUNTER_RESET_YEARLY, period=year,
        ),
        metadata=auth(key),
    )  # fmt: skip
    client.create(payload(advanceNumber="ADV-0042"))
    error = client.create_fails(payload())
    assert error.code == grpc.StatusCode.FAILED_PRECONDITION
    assert error.info.reason == "ADVANCE_COUNTER_BEHIND"
    current = counters.GetCounter(
        cpb.GetCounterRequest(counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, period=year),
        metadata=auth(key),
    )
    assert current.current_value == 41  # the number issued in the failed create rolled back


def test_numbers_are_per_entity_and_mode(channel, keys, database):
    acme, globex = Client(channel, keys.create("acme")), Client(channel, keys.create("globex"))
    acme_test = Client(channel, keys.create("acme", mode="test"))
    for c in (acme, globex, acme_test):
        assert c.create(payload(advanceNumber="A-1")).advance_number == "A-1"


@pytest.mark.parametrize(
    ("raw_key", "reason"),
    [
        ("", "FIELD_REQUIRED"),
        ("abc", "KEY_INVALID"),
        ("0", "KEY_INVALID"),
        ("-1", "KEY_INVALID"),
        ("1.5", "KEY_INVALID"),
        ("٣", "KEY_INVALID"),
        ("99999999999999999999", "KEY_INVALID"),
    ],
)
def test_get_rejects_keys_that_are_not_keys(client, raw_key, reason):
    error = client.fails("GetAdvance", pb.GetAdvanceRequest(key=raw_key))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"key": reason}


def test_get_of_a_missing_advance_is_not_found(client):
    error = client.fails("GetAdvance", pb.GetAdvanceRequest(key="123456"))
    assert error.code == grpc.StatusCode.NOT_FOUND
    assert error.info.reason == "ADVANCE_NOT_FOUND"


def test_output_only_fields_on_create_are_ignored(client):
    body = payload(key="999", totalEntered="1.00", etag="x")
    created = client.create(body)
    assert created.key != "999" and created.total_entered == "500.00" and created.etag != "x"


def test_advances_scopes(channel, keys):
    reader = Client(channel, keys.create(scopes=["advances:read"]))
    error = reader.create_fails(payload())
    assert (error.code, error.info.reason) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")
    assert error.info.metadata["required_scope"] == "advances:write"


def test_every_dimension_round_trips(client):
    dimensions = {
        name: {"id": f"{name}-1", "name": name.title()}
        for name in (
            "location",
            "department",
            "project",
            "customer",
            "vendor",
            "employee",
            "item",
            "class",
        )
    }
    created = client.create(payload(items=[item(dimensions=dimensions)]))
    from google.protobuf import json_format

    as_json = json_format.MessageToDict(created.items[0].dimensions)
    assert as_json == {name: {"id": f"{name}-1", "name": name.title()} for name in dimensions}
    assert client.get(created.key).items[0].dimensions == created.items[0].dimensions


def test_a_draft_is_numbered_when_submitted_and_a_deleted_draft_burns_nothing(
    client, channel, key, database
):
    current = _advance_counter(channel, key)
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    gone = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    assert (draft.advance_number, gone.advance_number, current()) == ("", "", 41)
    client.DeleteAdvance(pb.DeleteAdvanceRequest(key=gone.key))
    posted = client.SubmitAdvance(pb.SubmitAdvanceRequest(key=draft.key))
    assert (posted.advance_number, current()) == ("ADV-0042", 42)
    assert client.get(draft.key).advance_number == "ADV-0042"
    assert client.create().advance_number == "ADV-0043"  # created POSTED: numbered at once


def test_a_draft_numbered_by_the_first_version_keeps_its_number(client, channel, key, database):
    """The first version numbered drafts at create; submitting one does not number it again."""
    current = _advance_counter(channel, key)
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT"))
    with database.begin() as conn:  # as the first version left it
        conn.execute(
            update(models.Advance)
            .where(models.Advance.id == int(draft.key))
            .values(advance_number="ADV-0007")
        )
    posted = client.SubmitAdvance(pb.SubmitAdvanceRequest(key=draft.key))
    assert (posted.advance_number, current()) == ("ADV-0007", 41)


def test_a_supplied_draft_number_is_kept_through_submit(client, channel, key):
    current = _advance_counter(channel, key)
    draft = client.create(payload(state="ADVANCE_STATE_DRAFT", advanceNumber="OLD-1"))
    assert client.SubmitAdvance(pb.SubmitAdvanceRequest(key=draft.key)).advance_number == "OLD-1"
    assert current() == 41
