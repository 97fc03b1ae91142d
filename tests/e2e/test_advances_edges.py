"""Edges found by probing: overflow, races on supplied numbers, rates of 1 in a foreign
currency, hostile page tokens, closed periods on unapply, immutable and output-only fields."""

import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import cast

import grpc
import pytest
from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask

from service.db import models
from tests.advances import Client, configure, count_rows, item, nothing_written, payload
from tests.tools import violations


def foreign(currency: str, rate: str, *items):
    return payload(
        paymentInformation={
            "paymentDate": "2024-06-13",
            "receiptDate": "2024-06-13",
            "paymentMethod": "PAYMENT_METHOD_EFT",
            "currency": {"txnCurrency": currency, "exchangeRate": rate},
        },
        items=list(items) or [item()],
    )


def test_a_base_amount_past_the_limit_is_invalid_not_an_overflow(client, database):
    error = client.create_fails(foreign("EUR", "10000", item("9999999999999.99")))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"advance.items[0].txn_amount": "AMOUNT_TOO_LARGE"}
    assert nothing_written(database)
    # The largest amounts that fit are stored exactly, in many lines.
    created = client.create(payload(items=[item("9999999999999.99")] * 500))
    assert created.total_entered == "4999999999999995.00"


def test_racing_creates_with_one_supplied_number_make_one_advance(server, key, database):
    barrier = threading.Barrier(16)

    def create(_):
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            client = Client(channel, key)
            barrier.wait()
            try:
                client.create(payload(advanceNumber="DUP-1"))
                return "OK"
            except grpc.RpcError as error:
                return error.code().name

    with ThreadPoolExecutor(16) as pool:
        outcomes = sorted(pool.map(create, range(16)))
    assert outcomes == ["ALREADY_EXISTS"] * 15 + ["OK"]
    assert count_rows(database, models.Advance) == 1


def test_a_foreign_currency_at_rate_1_stays_updatable(client):
    advance = client.create(foreign("EUR", "1"))
    assert advance.payment_information.currency.exchange_rate == "1"
    request = pb.UpdateAdvanceRequest(
        advance=pb.Advance(key=advance.key, description="x"),
        update_mask=FieldMask(paths=["description"]),
    )
    assert client.UpdateAdvance(request).description == "x"
    implied = pb.UpdateAdvanceRequest(advance=pb.Advance(key=advance.key, description="y"))
    assert client.UpdateAdvance(implied).description == "y"


def test_an_advance_keeps_its_base_currency_when_the_entitys_changes(client, database):
    advance = client.create(foreign("EUR", "1.5"))
    configure(database, base_currency="EUR")
    request = pb.UpdateAdvanceRequest(advance=pb.Advance(key=advance.key, description="x"))
    updated = client.UpdateAdvance(request)
    assert updated.payment_information.currency.base_currency == "USD"
    assert updated.total_entered == "150.00"  # 100.00 x 1.5, as before


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b"[" * 2000 + b"]" * 2000).decode(),
        "A" * 100_000,
        base64.urlsafe_b64encode(b'{"k":"advances","p":[true,"",""]}').decode(),
    ],
)
def test_hostile_page_tokens_are_invalid_argument(client, token):
    error = client.fails("ListAdvances", pb.ListAdvancesRequest(page_token=token))
    assert violations(error) == {"page_token": "PAGE_TOKEN_INVALID"}


def test_unapply_is_refused_when_the_application_is_in_a_closed_period(client, database):
    advance = client.create()
    client.apply(advance.key, "30", "I", "2024-07-05")
    configure(database, gl_closed_through=date(2024, 7, 10))
    error = client.fails(
        "UnapplyAdvance", pb.UnapplyAdvanceRequest(key=advance.key, invoice_number="I")
    )
    assert (error.code, error.info.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "PERIOD_CLOSED")
    assert client.get(advance.key).payment_information.total_paid == "30.00"


def test_update_refuses_unknown_enums_and_a_changed_number(client):
    advance = client.create(payload(advanceNumber="N-1"))
    error = client.fails(
        "UpdateAdvance",
        pb.UpdateAdvanceRequest(
            advance=pb.Advance(key=advance.key, description="x", state=cast(pb.AdvanceState, 99))
        ),
    )
    assert violations(error) == {"advance.state": "ENUM_VALUE_UNKNOWN"}
    error = client.fails(
        "UpdateAdvance",
        pb.UpdateAdvanceRequest(
            advance=pb.Advance(key=advance.key, description="x", advance_number="N-2")
        ),
    )
    assert violations(error) == {"advance.advance_number": "FIELD_IMMUTABLE"}
    same = pb.Advance(key=advance.key, description="x", advance_number="N-1")
    assert client.UpdateAdvance(pb.UpdateAdvanceRequest(advance=same)).description == "x"


def test_update_reports_every_problem_at_once(client):
    request = pb.UpdateAdvanceRequest(
        advance=pb.Advance(key="abc"), update_mask=FieldMask(paths=["nope", "state"])
    )
    error = client.fails("UpdateAdvance", request)
    assert violations(error) == {
        "advance.key": "KEY_INVALID",
        "update_mask.paths[0]": "FIELD_MASK_PATH_UNKNOWN",
        "update_mask.paths[1]": "FIELD_NOT_WRITABLE",
    }


def test_an_update_naming_nothing_is_invalid(client):
    advance = client.create()
    error = client.fails(
        "UpdateAdvance", pb.UpdateAdvanceRequest(advance=pb.Advance(key=advance.key))
    )
    assert violations(error) == {"update_mask": "FIELD_MASK_EMPTY"}


def test_a_flood_of_violations_is_reported_within_a_status_a_client_accepts(client, database):
    error = client.create_fails(payload(items=[item("1e5")] * 500))  # 500 bad amounts
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert len(error.violations) <= 20
    assert "more" in error.message
    assert nothing_written(database)
