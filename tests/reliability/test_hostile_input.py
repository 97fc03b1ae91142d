"""Property-based hostile input for every RPC (methods found from the descriptors).

Each example sends one request, drawn from a mix (see fuzz_requests.py): arbitrary
messages built from the descriptor; valid requests built against objects the example first
makes through the API; valid requests with fields replaced by arbitrary values. It goes
with no idempotency key, a fresh one, or now and then a fresh one sent twice with the same
request (and always the first OK answer to a key of a mutating RPC is retried so).
Every answer must be OK or a well-formed error (never UNKNOWN/INTERNAL, always a
google.rpc.Status with an ErrorInfo); a valid request must answer OK; what an OK answer
says must be what a read returns afterwards; a replay must return the same bytes. After
each RPC's run the database must hold nothing invalid, and the RPC must have answered OK
both with an idempotency key and without one.
"""

from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import pairwise
from typing import Any
from uuid import uuid4

import grpc
import pytest
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.receivables.v1 import advances_pb2 as apb
from google.protobuf import text_format
from google.protobuf.message import Message
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from service.auth.scopes import method_scopes
from service.db import models
from service.rpc.methods import mutating_methods
from service.server import SERVICES
from tests.errors import from_status
from tests.reliability.fuzz_requests import World, message_of, mutated
from tests.support import auth

METHODS = {
    method.name: (f"/{service.full_name}/{method.name}", method.input_type)
    for service in SERVICES
    for method in service.methods
}
assert {path for path, _ in METHODS.values()} == set(method_scopes(SERVICES))
assert set(METHODS) == set(World.BUILDERS)
MUTATING = {path.rsplit("/", 1)[1] for path in mutating_methods(SERVICES)}
# Answers an Advance: what it says must be what GetAdvance then returns.
ANSWER_ADVANCE = {
    "CreateAdvance", "GetAdvance", "UpdateAdvance", "SubmitAdvance", "ReverseAdvance",
    "ApplyAdvance", "UnapplyAdvance",
}  # fmt: skip
# The RPCs that create objects (none of which this test's run of them deletes): the table
# and column of what they created, and the column's value from what check_answer returns.
_COUNTER_NAME = (
    models.Counter.counter_type.concat("|").concat(models.Counter.series).concat("|")
    .concat(models.Counter.period)
)  # fmt: skip
CREATES: dict[str, tuple[Any, Any, Callable[[str], object]]] = {
    "CreateAdvance": (models.Advance, models.Advance.id, int),
    "BatchCreateAdvances": (models.Advance, models.Advance.id, int),
    "AdvanceCounter": (models.Counter, _COUNTER_NAME, str),
    "BatchAdvanceCounters": (models.Counter, _COUNTER_NAME, str),
}
EXAMPLES = 100

# 4 in 10 valid, 3 mutated, 3 arbitrary. No key on 4 in 10, a fresh key on 4, and on 2 a
# fresh key sent twice with the same request (a retry: the second answer must be a replay).
KINDS = st.sampled_from(["valid"] * 4 + ["mutated"] * 3 + ["arbitrary"] * 3)
KEY_USES = st.sampled_from(["none"] * 4 + ["fresh"] * 4 + ["replay"] * 2)

# PostgreSQL is the stricter of the two (no NUL in text, typed columns): run there.
pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)


def shown(request: Message, idempotency_key: str | None) -> str:
    """The request exactly, to reproduce a failure with."""
    text = text_format.MessageToString(request, as_one_line=True, as_utf8=False)
    return f"{type(request).__name__} {{{text}}} (idempotency-key {idempotency_key!r})"


def send(call, key: str, request: Message, idempotency_key: str | None):
    """(code, response bytes or None, replayed); fails on an answer that is not OK and
    not a well-formed error."""
    metadata = auth(key) + ((("idempotency-key", idempotency_key),) if idempotency_key else ())
    try:
        response, rpc = call.with_call(request.SerializeToString(), metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        where = shown(request, idempotency_key)
        assert error.code() not in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL), (
            f"{error.code().name} {error.details()!r} for {where}"
        )
        status = rpc_status.from_call(error)
        assert status is not None, f"no google.rpc.Status for {error.code().name} for {where}"
        from_status(status)  # asserts it carries an ErrorInfo
        return error.code(), None, False
    replayed = dict(rpc.initial_metadata()).get("idempotent-replayed") == "true"
    return grpc.StatusCode.OK, response, replayed


def check_answer(world: World, rpc: str, request: Message, response: bytes) -> list[str]:
    """What the OK answer says is what reads now return; the objects it created."""
    if rpc == "CreateAdvance" and request.validate_only:  # type: ignore[attr-defined]
        advance = apb.Advance.FromString(response)
        with pytest.raises(grpc.RpcError):  # nothing was written
            world.client.get(advance.key)
        return []
    if rpc in ANSWER_ADVANCE:
        advance = apb.Advance.FromString(response)
        assert world.client.get(advance.key) == advance, f"{rpc} answered what is not stored"
        return [advance.key] if rpc == "CreateAdvance" else []
    if rpc == "BatchCreateAdvances":
        made = []
        created = apb.BatchCreateAdvancesResponse.FromString(response)
        items = request.requests  # type: ignore[attr-defined]
        assert len(created.results) == len(items)
        for item, outcome in zip(items, created.results, strict=True):
            if outcome.status.code != 0:
                assert outcome.status.code not in (2, 13), f"item UNKNOWN/INTERNAL: {outcome}"
                from_status(outcome.status)
            elif request.validate_only or item.validate_only:  # type: ignore[attr-defined]
                with pytest.raises(grpc.RpcError):
                    world.client.get(outcome.advance.key)
            else:
                assert world.client.get(outcome.advance.key) == outcome.advance
                made.append(outcome.advance.key)
        return made
    if rpc == "DeleteAdvance":
        with pytest.raises(grpc.RpcError) as caught:
            world.client.get(request.key)  # type: ignore[attr-defined]
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND, "a deleted advance is still there"
        return []
    if rpc == "VoidNumbers":
        voided = cpb.VoidNumbersResponse.FromString(response)
        assert len(voided.numbers) == request.last_value - request.first_value + 1  # type: ignore[attr-defined]
        trail = world.counters.ListCounterEvents(
            cpb.ListCounterEventsRequest(
                counter_type=voided.event.counter_type, series=voided.event.series,
                period=voided.event.period, page_size=1000,
            ),
            metadata=world.metadata,
        )  # fmt: skip
        assert voided.event in trail.events or trail.next_page_token, "a void not in the trail"
        return []
    if rpc == "UpdateCounter":
        answer = cpb.Counter.FromString(response)
        assert stored_counter(world, answer) == answer, "UpdateCounter answered what is not stored"
        return []
    answers: list[cpb.AdvanceCounterResponse] = []
    validated = getattr(request, "validate_only", False)
    if rpc == "AdvanceCounter":
        answers = [cpb.AdvanceCounterResponse.FromString(response)]
    elif rpc == "IssueNumbers":
        issued = cpb.IssueNumbersResponse.FromString(response)
        assert len(issued.numbers) == issued.last_value - issued.first_value + 1
        assert issued.counter.next_number == "" or issued.counter.current_value == issued.last_value
        # Its numbers are written with the document's date; a read, with the period's.
        answer = cpb.Counter()
        answer.CopyFrom(issued.counter)
        answer.next_number = stored_counter(world, answer).next_number
        answers = [cpb.AdvanceCounterResponse(counter=answer)]
    elif rpc == "BatchAdvanceCounters":
        batch = cpb.BatchAdvanceCountersResponse.FromString(response)
        assert len(batch.results) == len(request.counters)  # type: ignore[attr-defined]
        for item, result in zip(request.counters, batch.results, strict=True):  # type: ignore[attr-defined]
            if result.status.code != 0:  # a failed item's status is well formed too
                assert result.status.code not in (2, 13), f"item UNKNOWN/INTERNAL: {result}"
                from_status(result.status)
            elif validated or item.validate_only:
                # Later items of a batch that is written may move the same counter.
                assert_not_written(world, result.response, whole_call=validated)
            else:
                answers.append(result.response)
    if rpc == "AdvanceCounter" and validated:
        assert_not_written(world, answers[0], whole_call=True)
        return []
    last = {name_of(a.counter): a.counter for a in answers}  # items apply in order
    for counter in last.values():
        assert stored_counter(world, counter) == counter, f"{rpc} answered what is not stored"
    return [name_of(a.counter) for a in answers if a.created]


def name_of(counter: cpb.Counter) -> str:
    """What identifies a counter: its type, series and period."""
    kind = cpb.CounterType.Name(counter.counter_type).removeprefix("COUNTER_TYPE_").lower()
    return f"{kind}|{counter.series}|{counter.period}"


def stored_counter(world: World, counter: cpb.Counter) -> cpb.Counter:
    return world.counters.GetCounter(
        cpb.GetCounterRequest(
            counter_type=counter.counter_type, series=counter.series, period=counter.period
        ),
        metadata=world.metadata,
    )


def assert_not_written(world: World, answer: cpb.AdvanceCounterResponse, whole_call: bool) -> None:
    """A validate-only answer changed nothing: what it would have created is not there,
    and (when the whole call only validated) what it would have raised is not raised."""
    try:
        stored = stored_counter(world, answer.counter)
    except grpc.RpcError as error:  # its series is not there: nothing of it was written
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return
    if not whole_call:
        return
    if answer.created:
        assert not stored.HasField("create_time"), "validate_only created a counter"
    elif answer.advanced:
        assert stored.current_value < answer.counter.current_value, "validate_only advanced"


def invariants_hold(engine) -> dict[str, int]:
    """Nothing invalid was written. Returns how many rows of each kind there are."""
    with engine.connect() as conn:
        line = models.AdvanceLine
        lines = {
            row[0]: tuple(map(int, row[1:]))
            for row in conn.execute(
                select(line.advance_id, func.sum(line.txn_amount), func.sum(line.base_amount))
                .group_by(line.advance_id)
            )
        }  # fmt: skip
        application = models.AdvanceApplication
        in_effect = {
            row[0]: tuple(map(int, row[1:]))
            for row in conn.execute(
                select(
                    application.advance_id,
                    func.sum(application.amount),
                    func.sum(application.base_amount),
                )
                .where(application.unapply_time.is_(None))
                .group_by(application.advance_id)
            )
        }
        ever_applied = set(conn.execute(select(application.advance_id).distinct()).scalars())
        advances = conn.execute(select(models.Advance)).all()
        for a in advances:
            what = f"advance {a.id} ({a.state})"
            assert lines.get(a.id) == (a.txn_total_entered, a.total_entered), (
                f"{what}: lines {lines.get(a.id)} != totals {a.txn_total_entered, a.total_entered}"
            )
            paid = in_effect.get(a.id, (0, 0))
            assert paid == (a.txn_total_paid, a.total_paid), (
                f"{what}: applications in effect {paid} != paid {a.txn_total_paid, a.total_paid}"
            )
            assert a.ever_applied == (a.id in ever_applied), f"{what}: ever_applied wrong"
            assert (a.reversed_date is not None) == (a.state == "reversed"), what
            if a.state in ("draft", "reversed"):
                assert paid == (0, 0), f"{what} has applications in effect"
            elif a.txn_total_paid == 0:
                assert a.state == "posted", what
            elif a.txn_total_paid < a.txn_total_entered:
                assert a.state == "partially_applied", what
            else:
                assert a.state == "fully_applied", what
                assert a.total_paid == a.total_entered, f"{what}: base left due when fully paid"
        for s in conn.execute(select(models.CounterSeries)):
            assert 1 <= s.padding <= 12, s.counter_type
            for text in (s.prefix, s.suffix):
                assert len(text) <= 20 and text.isprintable(), s.counter_type
        counters = conn.execute(select(models.Counter)).all()
        for c in counters:
            assert c.current_value >= 0, c.counter_type
        # Each counter's audit trail is one chain, from its creation (or its period's first
        # issue) to its current value, every advance and issue moving it forwards.
        chains: dict[tuple[str, ...], list] = defaultdict(list)
        events = models.CounterEvent
        voids: dict[tuple[str, ...], list] = defaultdict(list)
        for event in conn.execute(select(events).order_by(events.id)):
            at = (event.entity_id, event.mode, event.counter_type, event.series, event.period)
            if event.action == "void":  # numbers accounted for, not a value
                voids[at].append(event)
            elif event.action != "update":  # a series' format, not a value
                chains[at].append(event)
        # Every voided value was issued, and voided once.
        for where, voided in voids.items():
            issued = {
                v for e in chains.get(where, []) if e.action == "issue"
                for v in range(e.first_value, e.last_value + 1)
            }  # fmt: skip
            values = [v for e in voided for v in range(e.first_value, e.last_value + 1)]
            assert len(values) == len(set(values)), f"{where}: a number voided twice"
            assert set(values) <= issued, f"{where}: a void of numbers never issued"
            assert all(e.old_value == e.new_value for e in voided), f"{where}: a void moved"
        for c in counters:
            chain = chains.pop((c.entity_id, c.mode, c.counter_type, c.series, c.period), [])
            assert chain, f"counter {c.counter_type}/{c.series}/{c.period}: no events"
            first = chain[0]
            assert (first.action, first.old_value) in (("create", None), ("issue", 0)), (
                f"counter {c.counter_type}: neither created nor issued from 0 first"
            )
            for before, event in pairwise(chain):
                assert event.action in ("advance", "issue"), (c.counter_type, event.action)
                assert event.old_value == before.new_value < event.new_value, (
                    f"counter {c.counter_type}: event {event.id} {event.action} "
                    f"{event.old_value} -> {event.new_value} after {before.new_value}"
                )
            assert chain[-1].new_value == c.current_value, f"counter {c.counter_type}"
        assert not chains, f"events of counters that do not exist: {list(chains)}"
        record = models.IdempotencyRecord
        unanswered = conn.execute(
            select(func.count()).select_from(record).where(record.response.is_(None))
        ).scalar_one()
        assert unanswered == 0, "idempotency records committed without their response"
        return {
            "advances": len(advances),
            "applications": conn.execute(
                select(func.count()).select_from(application)
            ).scalar_one(),
            "counters": len(counters),
        }


@pytest.mark.parametrize("rpc", sorted(METHODS))
def test_fuzzed_requests_get_ok_or_a_well_formed_error(channel, key, database, rpc, proof):
    method, descriptor = METHODS[rpc]
    call = channel.unary_unary(method)  # bytes in, bytes out
    world = World(channel, key)
    seen: Counter[str] = Counter()
    answers: Counter[str] = Counter()
    created: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same examples every run: a failure reproduces
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    @given(st.data())
    def one(data):
        kind = data.draw(KINDS, label="kind")
        use = data.draw(KEY_USES, label="idempotency key")
        if kind == "arbitrary":
            request = data.draw(message_of(descriptor), label="arbitrary request")
        else:
            request = world.valid(rpc, data)
            if kind == "mutated":
                request = mutated(data, request)
        idempotency_key = None if use == "none" else f"fuzz-{uuid4()}"
        code, response, replayed = send(call, key, request, idempotency_key)
        assert not replayed, f"a fresh key was replayed: {shown(request, idempotency_key)}"
        if kind == "valid":
            assert code == grpc.StatusCode.OK, (
                f"a valid request answered {code.name}: {shown(request, idempotency_key)}"
            )
        # A retry with the same key: drawn now and then, and always for the first OK
        # answer to a key, so that every mutating RPC's run replays at least once.
        first_ok = (
            code == grpc.StatusCode.OK
            and idempotency_key
            and not seen["replayed"]
            and not getattr(request, "validate_only", False)
        )
        if use == "replay" or (first_ok and rpc in MUTATING):
            seen["twice"] += 1
            again, response_again, replayed = send(call, key, request, idempotency_key)
            assert again == code, f"replayed as {again.name}: {shown(request, idempotency_key)}"
            if code == grpc.StatusCode.OK and getattr(request, "validate_only", False):
                # Nothing was written, the idempotency record neither: it runs again.
                assert not replayed, f"validate_only replayed: {shown(request, idempotency_key)}"
                seen["validated twice"] += 1
            elif code == grpc.StatusCode.OK and rpc in MUTATING:
                assert replayed and response_again == response, (
                    f"not replayed byte for byte: {shown(request, idempotency_key)}"
                )
                seen["replayed"] += 1
            elif rpc not in MUTATING:  # a read ignores the key
                assert not replayed, f"a read was replayed: {shown(request, idempotency_key)}"
        seen[kind] += 1
        if code == grpc.StatusCode.OK:
            answers["OK with key" if idempotency_key else "OK without key"] += 1
            assert response is not None
            created.extend(check_answer(world, rpc, request, response))
        else:
            answers[code.name] += 1

    one()
    rows = invariants_hold(database)
    errors = ", ".join(f"{code} {n}" for code, n in sorted(answers.items()) if "OK" not in code)
    proof(
        f"{rpc}: {sum(answers.values())} examples ({seen['valid']} valid, "
        f"{seen['mutated']} mutated, {seen['arbitrary']} arbitrary), "
        f"OK {answers['OK with key']} with key / {answers['OK without key']} without, "
        f"{errors or 'no errors'}; {seen['twice']} sent twice with one key "
        f"({seen['replayed']} OK replayed, {seen['validated twice']} validate-only run again); "
        f"{len(created)} created by it; "
        f"in the database {rows}"
    )
    assert answers["OK with key"] >= 1 and answers["OK without key"] >= 1, answers
    assert seen["replayed"] >= 1 or rpc not in MUTATING, f"{rpc}: no OK answer was replayed"
    if rpc in CREATES:  # the data really was written, and is still there
        table, column, to_value = CREATES[rpc]
        assert created, f"{rpc} created nothing"
        with database.connect() as conn:
            stored = conn.execute(
                select(func.count())
                .select_from(table)
                .where(column.in_([to_value(name) for name in created]))
            ).scalar_one()
        assert stored == len(created), f"{rpc} created {len(created)}, {stored} are stored"


def test_a_megabyte_string_is_refused_cleanly(channel, key, database):
    from arcus.receivables.v1 import advances_pb2 as apb

    method = channel.unary_unary(f"/{SERVICES[1].full_name}/CreateAdvance")
    for size, field, reason in [
        (1024 * 1024, "advance", "ADVANCE_TOO_LARGE"),  # refused before it is parsed
        (512 * 1024, "advance.description", "TEXT_TOO_LONG"),
    ]:
        request = apb.CreateAdvanceRequest(advance=apb.Advance(description="x" * size))
        with pytest.raises(grpc.RpcError) as caught:
            method(request.SerializeToString(), metadata=auth(key))
        error = from_status(rpc_status.from_call(caught.value))
        assert (error.code, error.violations.get(field)) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            reason,
        )
