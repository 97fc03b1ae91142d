"""Small ways a caller could mislead the service or learn from it: keys of any length,
forged page tokens, calls abandoned mid-way, and identifiers that counted everyone's rows.

(A key of over 4,300 digits was INTERNAL with a traceback; page tokens could be forged;
a call that failed after its client left logged a false error; advance keys and API key
ids were global sequences, so one tenant could count another's advances.)"""

import base64
import signal
from pathlib import Path

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as pb
from sqlalchemy import select

from service.advances import repository
from service.db import ids, models
from tests.advances import Client, payload
from tests.errors import rich_error
from tests.processes import served
from tests.support import auth
from tests.tools import wait_for

INVALID = grpc.StatusCode.INVALID_ARGUMENT
HUGE_KEY = "7" * 5000  # past Python's 4,300-digit int conversion limit


def test_keys_of_any_length_are_invalid_argument(channel, key, proof):
    client = Client(channel, key)
    checked = []
    for method, request, field in [
        ("GetAdvance", pb.GetAdvanceRequest(key=HUGE_KEY), "key"),
        ("DeleteAdvance", pb.DeleteAdvanceRequest(key=HUGE_KEY), "key"),
        ("SubmitAdvance", pb.SubmitAdvanceRequest(key=HUGE_KEY), "key"),
        ("ReverseAdvance", pb.ReverseAdvanceRequest(key=HUGE_KEY, reversed_date="2024-06-21"),
         "key"),
        ("ApplyAdvance", pb.ApplyAdvanceRequest(
            key=HUGE_KEY, invoice_number="I", amount="1", applied_date="2024-06-20"), "key"),
        ("UnapplyAdvance", pb.UnapplyAdvanceRequest(key=HUGE_KEY, invoice_number="I"), "key"),
        ("UnapplyAdvance", pb.UnapplyAdvanceRequest(key="1", application_key=HUGE_KEY),
         "application_key"),
        ("UpdateAdvance", pb.UpdateAdvanceRequest(
            advance=pb.Advance(key=HUGE_KEY, description="x")), "advance.key"),
    ]:  # fmt: skip
        error = client.fails(method, request)
        assert (error.code, error.violations.get(field)) == (INVALID, "KEY_INVALID"), method
        checked.append(method)
    proof(f"a 5,000-digit key: KEY_INVALID from {len(checked)} requests, none INTERNAL")


def test_page_tokens_are_tamper_evident(channel, keys, proof):
    acme, globex = Client(channel, keys.create("acme")), Client(channel, keys.create("globex"))
    for _ in range(3):
        acme.create()
        globex.create()
    token = acme.ListAdvances(pb.ListAdvancesRequest(page_size=1)).next_page_token
    body, _, signature = token.partition(".")
    position = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    larger_total = position.replace(b",3]", b",2]")  # the total_size, changed
    assert larger_total != position
    forged = base64.urlsafe_b64encode(larger_total).decode().rstrip("=") + "." + signature
    counters = counters_pb2_grpc.CounterServiceStub(channel)
    listing = lambda t: pb.ListAdvancesRequest(page_token=t)  # noqa: E731
    for name, call in [
        ("a changed position", lambda: acme.ListAdvances(listing(forged))),
        ("no signature", lambda: acme.ListAdvances(listing(body))),
        ("another tenant's token", lambda: globex.ListAdvances(listing(token))),
        ("another listing's token", lambda: counters.ListCounters(
            cpb.ListCountersRequest(page_token=token), metadata=acme.metadata)),
    ]:  # fmt: skip
        with pytest.raises(grpc.RpcError) as caught:
            call()
        error = rich_error(caught.value)
        assert (error.code, error.violations) == (INVALID, {"page_token": "PAGE_TOKEN_INVALID"}), (
            name
        )
    assert acme.ListAdvances(pb.ListAdvancesRequest(page_token=token)).total_size == 3
    proof("page tokens with a changed position, without signature, of another tenant or "
          "listing: PAGE_TOKEN_INVALID; the genuine one pages on")  # fmt: skip


def test_no_identifier_a_tenant_sees_counts_another_tenants_rows(channel, keys, proof):
    """Between two of acme's creates, globex makes 50 advances and 50 keys: acme's keys,
    line keys, application keys and API key ids show no trace of them."""
    acme = Client(channel, keys.create("acme"))
    first = acme.apply(acme.create().key, "10.00")
    globex = Client(channel, keys.create("globex"))
    for _ in range(50):
        globex.apply(globex.create().key, "10.00")
        keys.create("globex")
    second = Client(channel, keys.create("acme"))
    later = second.apply(second.create().key, "10.00")

    def seen(advance: pb.Advance) -> list[int]:
        return [int(advance.key), int(advance.items[0].key), int(advance.applications[0].key),
                int(advance.audit.created_by)]  # fmt: skip

    for before, after in zip(seen(first), seen(later), strict=True):
        assert not 0 < after - before <= 1000, (before, after)  # no sequence shows through
    for key in [*seen(first)[:3], *seen(later)[:3]]:
        assert ids.SMALLEST <= key <= ids.LARGEST
    proof("advance, line and application keys and API key ids of one tenant, before and "
          "after another made 50 of each: no sequence shows through")  # fmt: skip


def test_a_new_key_that_collides_is_drawn_again(channel, key, database, monkeypatch, proof):
    client = Client(channel, key)
    taken = int(client.create().key)
    draws: list[list[int]] = []

    def draw(count: int) -> list[int]:  # the first draw's advance key is the taken one
        draws.append(([taken] if not draws else []) + ids.new_ids(count - (not draws)))
        return draws[-1]

    monkeypatch.setattr(repository, "new_ids", draw)
    created = client.create(payload(description="drawn again"))
    assert [d[0] for d in draws] == [taken, int(created.key)]  # refused, then drawn again
    with database.connect() as conn:
        keys = sorted(conn.execute(select(models.Advance.id)).scalars())
    assert keys == sorted([taken, int(created.key)])
    proof("a new advance whose random key was taken: retried with another, one row each")


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_call_that_fails_after_its_caller_left_logs_no_error(database, key, tmp_path, proof):
    url = database.url.render_as_string(hide_password=False)
    with served(tmp_path, DATABASE_URL=url, DATABASE_TIMEOUT_SECONDS="2") as server:
        with grpc.insecure_channel(server.address) as channel:
            counters = counters_pb2_grpc.CounterServiceStub(channel)
            counters.AdvanceCounter(
                cpb.AdvanceCounterRequest(
                    counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=0, prefix="I"
                ),
                metadata=auth(key),
            )
            with database.connect() as blocker:
                held = blocker.begin()
                blocker.execute(select(models.Counter).with_for_update())
                for timeout in (0.2, 0.5, 1.0):  # left before, at, after the database gave up
                    with pytest.raises(grpc.RpcError) as caught:
                        counters.IssueNumbers(
                            cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE),
                            metadata=auth(key),
                            timeout=timeout,
                        )
                    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                wait_for(
                    lambda: Path(server.stderr).read_text().count('"code": "CANCELLED"') == 3,
                    20,
                    "every abandoned call ended (each let go at its caller's deadline), logged",
                )
                held.rollback()
            reply = counters.IssueNumbers(
                cpb.IssueNumbersRequest(counter_type=cpb.COUNTER_TYPE_INVOICE), metadata=auth(key)
            )
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
    log = Path(server.stderr).read_text()
    assert reply.first_value == 1
    for false_alarm in ("Traceback", '"level": "error"', "Exception serializing"):
        assert false_alarm not in log, log[-3000:]
    assert log.count('"code": "CANCELLED"') == 3
    proof("3 calls abandoned by their callers while they waited on a lock: logged as CANCELLED, "
          "no error, no traceback")  # fmt: skip


def test_keys_drawn_together_span_the_range_and_differ():
    drawn = ids.new_ids(10_000)
    assert len(set(drawn)) == len(drawn)
    assert all(ids.SMALLEST <= key <= ids.LARGEST for key in drawn)
    middle = (ids.SMALLEST + ids.LARGEST) // 2
    assert min(drawn) < middle < max(drawn)  # folded onto the whole range, not a corner
