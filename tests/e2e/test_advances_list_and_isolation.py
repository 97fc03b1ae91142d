"""ListAdvances paging, filters and views; tenant isolation for every RPC; concurrent creates."""

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import text

from service.advances.service import PAGE_KIND
from service.auth.keys import Tenant
from service.db.secrets import PAGE_TOKENS, load_secret
from service.db.uow import UnitOfWork
from service.pagination import PageTokens
from tests.advances import Client, payload
from tests.support import auth

S = pb.AdvanceState
NO_FILTERS = [""] * 6  # a token's filters: customer, state, number, reference, from, to
FULL, BASIC = pb.ADVANCE_VIEW_FULL, pb.ADVANCE_VIEW_BASIC


def list_all(client, **request):
    keys, token, pages = [], "", 0
    while True:
        page = client.ListAdvances(pb.ListAdvancesRequest(page_token=token, **request))
        keys += [a.key for a in page.advances]
        pages += 1
        token = page.next_page_token
        if not token:
            return keys, pages, page.total_size


def test_list_pages_through_everything_in_key_order(client):
    made = [client.create(payload(customer={"id": f"C-{i % 3}"})).key for i in range(25)]
    keys, pages, total = list_all(client, page_size=10)
    assert (keys, pages, total) == (sorted(made, key=int), 3, 25)
    first = client.ListAdvances(pb.ListAdvancesRequest())
    assert len(first.advances) == 25 and first.next_page_token == "" and first.total_size == 25


def test_later_pages_repeat_the_first_pages_total_instead_of_counting_again(client):
    for _ in range(3):
        client.create(payload())
    first = client.ListAdvances(pb.ListAdvancesRequest(page_size=2))
    client.create(payload())  # created mid-listing: not recounted (listed if its key is later)
    second = client.ListAdvances(
        pb.ListAdvancesRequest(page_size=2, page_token=first.next_page_token)
    )
    assert (first.total_size, second.total_size) == (3, 3)
    assert 1 <= len(second.advances) <= 2
    assert client.ListAdvances(pb.ListAdvancesRequest()).total_size == 4


def test_list_filters_by_customer_and_state(client):
    a = client.create(payload(customer={"id": "C-1"}))
    b = client.create(payload(customer={"id": "C-2"}, state="ADVANCE_STATE_DRAFT"))
    c = client.create(payload(customer={"id": "C-1"}, state="ADVANCE_STATE_DRAFT"))
    in_key_order = lambda *keys: sorted(keys, key=int)  # noqa: E731
    assert list_all(client, customer_id="C-1") == (in_key_order(a.key, c.key), 1, 2)
    assert list_all(client, state=S.ADVANCE_STATE_DRAFT) == (in_key_order(b.key, c.key), 1, 2)
    assert list_all(client, customer_id="C-1", state=S.ADVANCE_STATE_DRAFT, page_size=1) == (
        [c.key],
        1,
        1,
    )
    assert list_all(client, customer_id="nobody") == ([], 1, 0)


def test_basic_view_is_the_references_list_shape_and_full_is_whole(client):
    created = client.create()
    basic = client.ListAdvances(pb.ListAdvancesRequest()).advances[0]
    assert basic == pb.Advance(key=created.key, id=created.key, href=created.href)
    assert client.ListAdvances(pb.ListAdvancesRequest(view=BASIC)).advances[0] == basic
    assert client.ListAdvances(pb.ListAdvancesRequest(view=FULL)).advances[0] == created


def test_a_token_is_bound_to_its_filters(client):
    for _ in range(3):
        client.create()
    page = client.ListAdvances(pb.ListAdvancesRequest(page_size=1, customer_id="C-00019"))
    assert page.next_page_token
    error = client.fails(
        "ListAdvances", pb.ListAdvancesRequest(page_size=1, page_token=page.next_page_token)
    )
    assert error.violations == {"page_token": "PAGE_TOKEN_INVALID"}


class _Forged:
    """A token for `position`, signed with the real secret: what the service checks after
    the signature (a leaked secret must not open the door to bad positions either)."""

    def __init__(self, position: object) -> None:
        self.position = position

    def token(self, database) -> str:
        tokens = PageTokens(load_secret(UnitOfWork(database), PAGE_TOKENS))
        return tokens.encode(PAGE_KIND, Tenant("acme", "live"), self.position)


def _forged(position):
    return _Forged(position)


def _unsigned(position):
    """A token as the service made them before they were signed."""
    raw = json.dumps({"k": "advances", "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        ({"page_size": -1}, "page_size", "PAGE_SIZE_NEGATIVE"),
        ({"page_token": "nonsense"}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _unsigned([1, *NO_FILTERS, 0])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _forged(["1", *NO_FILTERS, 0])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _forged([-5, *NO_FILTERS, 0])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _forged([2**70, *NO_FILTERS, 0])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _forged([1, *NO_FILTERS, -1])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _forged([1, *NO_FILTERS, True])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"page_token": _forged([1, *NO_FILTERS])}, "page_token", "PAGE_TOKEN_INVALID"),
        ({"state": 77}, "state", "ENUM_VALUE_UNKNOWN"),
        ({"view": 9}, "view", "ENUM_VALUE_UNKNOWN"),
        ({"customer_id": "x" * 101}, "customer_id", "TEXT_TOO_LONG"),
        ({"advance_number": "x" * 65}, "advance_number", "TEXT_TOO_LONG"),
        ({"reference_number": "a\x00b"}, "reference_number", "TEXT_NOT_PRINTABLE"),
        ({"payment_date_from": "2024-13-01"}, "payment_date_from", "DATE_INVALID"),
        ({"payment_date_to": "June"}, "payment_date_to", "DATE_INVALID"),
        (
            {"payment_date_from": "2024-06-02", "payment_date_to": "2024-06-01"},
            "payment_date_to",
            "DATE_RANGE_INVALID",
        ),
    ],
)
def test_list_rejects_bad_requests(client, database, request_fields, field, reason):
    request_fields = {
        name: value.token(database) if isinstance(value, _Forged) else value
        for name, value in request_fields.items()
    }
    error = client.fails("ListAdvances", pb.ListAdvancesRequest(**request_fields))
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.violations == {field: reason}


def test_page_size_is_clamped_to_1000(client):
    client.create()
    assert len(client.ListAdvances(pb.ListAdvancesRequest(page_size=5000)).advances) == 1


def every_rpc(key: str):
    return [
        ("GetAdvance", pb.GetAdvanceRequest(key=key)),
        (
            "UpdateAdvance",
            pb.UpdateAdvanceRequest(
                advance=pb.Advance(key=key, description="x"),
                update_mask=FieldMask(paths=["description"]),
            ),
        ),
        ("DeleteAdvance", pb.DeleteAdvanceRequest(key=key)),
        ("SubmitAdvance", pb.SubmitAdvanceRequest(key=key)),
        ("ReverseAdvance", pb.ReverseAdvanceRequest(key=key, reversed_date="2024-06-20")),
        (
            "ApplyAdvance",
            pb.ApplyAdvanceRequest(
                key=key, invoice_number="I", amount="1", applied_date="2024-06-20"
            ),
        ),
        ("UnapplyAdvance", pb.UnapplyAdvanceRequest(key=key, invoice_number="I")),
    ]


@pytest.mark.parametrize(("entity", "mode"), [("globex", "live"), ("acme", "test")])
def test_another_tenants_advance_is_not_found_for_every_rpc(channel, keys, entity, mode):
    owner = Client(channel, keys.create("acme", mode="live"))
    stranger = Client(channel, keys.create(entity, mode=mode))
    advance = owner.create(payload(state="ADVANCE_STATE_DRAFT"))
    owner.create()
    for method, request in every_rpc(advance.key):
        error = stranger.fails(method, request)
        assert (error.code, error.info.reason) == (
            grpc.StatusCode.NOT_FOUND,
            "ADVANCE_NOT_FOUND",
        ), method
    listed = stranger.ListAdvances(pb.ListAdvancesRequest(view=FULL))
    assert (list(listed.advances), listed.total_size) == ([], 0)
    assert owner.get(advance.key) == advance  # untouched by all of that


def test_500_concurrent_creates_get_500_distinct_gapless_numbers(server, key, database):
    target = f"127.0.0.1:{server.port}"
    with grpc.insecure_channel(target) as channel:
        counters_pb2_grpc.CounterServiceStub(channel).AdvanceCounter(
            cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_AR_ADVANCE, advance_to=1000, prefix="ADV-"
            ),
            metadata=auth(key),
        )
    threads, per_thread = 16, 32  # 512 > 500: a few more than asked for
    barrier = threading.Barrier(threads)

    def create_many(_):
        with grpc.insecure_channel(target) as channel:
            client = Client(channel, key)
            barrier.wait()
            return [client.create().advance_number for _ in range(per_thread)]

    with ThreadPoolExecutor(threads) as pool:
        numbers = [n for batch in pool.map(create_many, range(threads)) for n in batch]
    assert len(numbers) == len(set(numbers)) == threads * per_thread
    values = sorted(int(n.removeprefix("ADV-")) for n in numbers)
    assert values == list(range(1001, 1001 + threads * per_thread))  # no gap, no duplicate
    with database.connect() as conn:  # each number's issue audited once, as its own block
        issued = conn.execute(
            text("SELECT first_value, last_value FROM counter_events"
                 " WHERE counter_type = 'ar_advance' AND action = 'issue' ORDER BY first_value")
        ).all()  # fmt: skip
    assert [tuple(row) for row in issued] == [(v, v) for v in values]


def _info(day: str) -> dict[str, str]:
    return {"paymentDate": day, "receiptDate": day, "paymentMethod": "PAYMENT_METHOD_CASH"}


def test_list_finds_by_number_reference_and_payment_dates_combined(client):
    made = {
        "a": client.create(payload(advanceNumber="OLD-1", referenceNumber="R-1",
                                   paymentInformation=_info("2024-06-01"))),
        "b": client.create(payload(referenceNumber="R-1", paymentInformation=_info("2024-06-15"))),
        "c": client.create(payload(referenceNumber="R-2", paymentInformation=_info("2024-06-30"),
                                   customer={"id": "C-9"})),
        "d": client.create(payload(referenceNumber="R-1", paymentInformation=_info("2024-07-01"))),
    }  # fmt: skip
    key = {name: advance.key for name, advance in made.items()}

    def found(**request):
        return [k for k in list_all(client, page_size=1, **request)[0]]

    def names(*wanted):
        return sorted((key[n] for n in wanted), key=int)

    assert found(advance_number="OLD-1") == [key["a"]]
    assert found(reference_number="R-1") == names("a", "b", "d")
    assert found(payment_date_from="2024-06-15") == names("b", "c", "d")
    assert found(payment_date_to="2024-06-15") == names("a", "b")  # inclusive
    assert found(payment_date_from="2024-06-01", payment_date_to="2024-06-30") == names(
        "a", "b", "c"
    )
    assert found(reference_number="R-1", payment_date_from="2024-06-02") == names("b", "d")
    assert found(reference_number="R-2", customer_id="C-9", payment_date_to="2024-06-30") == [
        key["c"]
    ]
    assert found(advance_number="NONE") == []
    page = client.ListAdvances(pb.ListAdvancesRequest(page_size=1, reference_number="R-1"))
    assert page.total_size == 3
    error = client.fails(
        "ListAdvances",
        pb.ListAdvancesRequest(page_token=page.next_page_token, reference_number="R-2"),
    )
    assert error.violations == {"page_token": "PAGE_TOKEN_INVALID"}


def test_get_advance_by_its_number(client, keys, channel):
    made = client.create(payload(advanceNumber="LEGACY-0042"))
    assert client.GetAdvance(pb.GetAdvanceRequest(advance_number="LEGACY-0042")) == made
    error = client.fails("GetAdvance", pb.GetAdvanceRequest(advance_number="LEGACY-0043"))
    assert (error.code, error.info.reason) == (grpc.StatusCode.NOT_FOUND, "ADVANCE_NOT_FOUND")
    assert error.info.metadata["advance_number"] == "LEGACY-0043"
    error = client.fails(
        "GetAdvance", pb.GetAdvanceRequest(key=made.key, advance_number="LEGACY-0042")
    )
    assert error.violations == {"advance_number": "ONE_OF_KEY_OR_NUMBER"}
    error = client.fails("GetAdvance", pb.GetAdvanceRequest(advance_number="a\nb"))
    assert error.violations == {"advance_number": "TEXT_NOT_PRINTABLE"}
    stranger = Client(channel, keys.create("globex"))
    error = stranger.fails("GetAdvance", pb.GetAdvanceRequest(advance_number="LEGACY-0042"))
    assert error.code == grpc.StatusCode.NOT_FOUND
