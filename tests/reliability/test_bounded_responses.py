"""Responses are bounded: a FULL page of ListAdvances stops early, before page_size, once it
reaches MAX_FULL_PAGE_BYTES; an advance, however large, fits one response far under gRPC's
default 4 MiB client limit.

(200 advances x 500 lines made one 381 MB response, 15 s of CPU and +1.5 GB of server
memory, all wasted: the client refused it.)"""

from datetime import UTC, date

import grpc
import pytest
from arcus.receivables.v1 import advances_pb2 as pb
from sqlalchemy import func, insert, select

from service.advances.service import MAX_FULL_PAGE_BYTES
from service.db import models
from service.db.ids import new_id
from tests.reliability import largest

pytestmark = pytest.mark.parametrize("database", ["postgresql"], indirect=True)
FULL = pb.ADVANCE_VIEW_FULL
DEFAULT_CLIENT_LIMIT = 4 * 1024 * 1024
# The largest advance: MAX_ADVANCE_BYTES as sent, and 500 applications of the longest
# invoice numbers (their most), each with its keys and times.
MAX_ADVANCE_RESPONSE = 1.5 * 1024 * 1024


def test_full_pages_of_large_advances_stop_early_and_miss_nothing(client, proof):
    made = {client.CreateAdvance(pb.CreateAdvanceRequest(advance=largest.largest_advance())).key
            for _ in range(5)}  # fmt: skip
    listed, sizes, token = [], [], ""
    while True:
        page = client.ListAdvances(
            pb.ListAdvancesRequest(page_size=1000, view=FULL, page_token=token)
        )
        sizes.append(page.ByteSize())
        listed += [a.key for a in page.advances]
        assert page.total_size == 5
        token = page.next_page_token
        if not token:
            break
    assert sorted(listed) == sorted(made)  # every advance once, none lost at a page's end
    assert max(sizes) <= MAX_FULL_PAGE_BYTES < DEFAULT_CLIENT_LIMIT
    assert len(sizes) >= 3  # ~1 MB each: at most two to a page
    proof(
        f"5 advances of 1 MiB, FULL, page_size 1000: {len(sizes)} pages of "
        f"{', '.join(f'{s / 2**20:.2f}' for s in sizes)} MiB; "
        f"bound {MAX_FULL_PAGE_BYTES / 2**20:g} MiB"
    )


def test_the_largest_advance_fits_one_response(client, database, proof):
    created = client.CreateAdvance(pb.CreateAdvanceRequest(advance=largest.largest_advance()))
    tenant = {"entity_id": "acme", "mode": "live"}
    applied = {
        "applied_date": date(2024, 6, 20),
        "create_time": created.audit.create_time.ToDatetime(tzinfo=UTC),
        "applied_by": int(created.audit.created_by),
    }
    with database.begin() as conn:  # as many applications as an advance may hold
        conn.execute(
            insert(models.AdvanceApplication),
            [
                {**tenant, **applied, "id": new_id(), "advance_id": int(created.key),
                 "invoice_number": largest.wide(100), "amount": 1, "base_amount": 1}
                for _ in range(500)
            ],
        )  # fmt: skip
    whole = client.get(created.key)
    assert len(whole.applications) == 500
    size = whole.ByteSize()
    assert size <= MAX_ADVANCE_RESPONSE
    page = client.ListAdvances(pb.ListAdvancesRequest(view=FULL))
    assert [a.key for a in page.advances] == [created.key]  # alone, it is a page
    proof(f"the largest advance (500 lines, 1 MiB sent, 500 applications): {size / 2**20:.2f} MiB")


def test_an_advance_too_large_to_answer_is_refused_when_sent(client):
    too_large = largest.largest_advance()
    too_large.description = largest.wide(1000) + "x" * 40_000
    error = client.fails("CreateAdvance", pb.CreateAdvanceRequest(advance=too_large))
    assert (error.code, error.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"advance": "ADVANCE_TOO_LARGE"},
    )


# The largest batch's answer: MAX_BATCH_BYTES as sent, and its 10,000 lines' keys, amounts
# and totals added.
MAX_BATCH_RESPONSE = 3 * 1024 * 1024


def test_the_largest_batch_fits_one_response(client, proof):
    """The client reads with gRPC's default limit: it always gets what was created."""
    batch = largest.largest_advance_batch()
    response = client.BatchCreateAdvances(batch)
    assert [r.status.code for r in response.results] == [0] * len(batch.requests)
    size = response.ByteSize()
    assert size <= MAX_BATCH_RESPONSE < DEFAULT_CLIENT_LIMIT
    sent = batch.ByteSize() / 2**20
    proof(f"the largest batch of advances (100 advances, 10,000 lines, {sent:.2f} MiB sent): "
          f"answered in {size / 2**20:.2f} MiB")  # fmt: skip


@pytest.mark.parametrize(
    ("batch", "reason"),
    [
        (largest.flood_of_advances(), "BATCH_TOO_LARGE"),
        (largest.batch_of_too_many_items(), "TOO_MANY_ITEMS"),
    ],
)
def test_a_batch_too_large_to_answer_is_refused_when_sent(client, database, batch, reason):
    error = client.fails("BatchCreateAdvances", batch)
    assert (error.code, error.violations) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        {"requests": reason},
    )
    with database.connect() as conn:
        assert conn.execute(select(func.count()).select_from(models.Advance)).scalar_one() == 0
