"""Helpers for AdvanceService tests: the reference payload, a client with a key."""

import copy
from typing import Any

import grpc
import pytest
from arcus.receivables.v1 import advances_pb2 as pb
from arcus.receivables.v1 import advances_pb2_grpc
from google.protobuf import json_format
from sqlalchemy import Engine, func, select

from service.db import models
from service.db.uow import UnitOfWork
from service.entities.store import EntityStore
from tests.errors import RichError, rich_error
from tests.support import auth

# The reference's create example, as proto JSON (enum values by their proto names).
REFERENCE_CREATE: dict[str, Any] = {
    "customer": {"id": "C-00019"},
    "paymentInformation": {
        "paymentDate": "2024-06-13",
        "receiptDate": "2024-06-13",
        "paymentMethod": "PAYMENT_METHOD_PRINTED_CHECK",
        "financialEntity": {"id": "BOA"},
    },
    "advanceSummary": {"id": "511"},
    "items": [
        {
            "glAccount": {"id": "2200"},
            "accountLabel": {"id": "Travel"},
            "txnAmount": "500",
            "dimensions": {"location": {"id": "CA"}},
        }
    ],
}


def payload(**changes: Any) -> dict[str, Any]:
    """The reference payload with top-level keys replaced (None removes one)."""
    body = copy.deepcopy(REFERENCE_CREATE)
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


def item(amount: str = "100.00", **extra: Any) -> dict[str, Any]:
    return {
        "glAccount": {"id": "2200"},
        "txnAmount": amount,
        "dimensions": {"location": {"id": "CA"}},
        **extra,
    }


def advance_message(body: dict[str, Any]) -> pb.Advance:
    return json_format.ParseDict(body, pb.Advance())


class Client:
    """An AdvanceService stub that sends one key with every call."""

    def __init__(self, channel: grpc.Channel, key: str) -> None:
        self.stub = advances_pb2_grpc.AdvanceServiceStub(channel)
        self.metadata = auth(key)

    def __getattr__(self, method: str):
        call = getattr(self.stub, method)
        return lambda request: call(request, metadata=self.metadata)

    def create(self, body: dict[str, Any] | None = None) -> pb.Advance:
        return self.CreateAdvance(
            pb.CreateAdvanceRequest(advance=advance_message(body or payload()))
        )

    def get(self, key: str) -> pb.Advance:
        return self.GetAdvance(pb.GetAdvanceRequest(key=key))

    def fails(self, method: str, request: Any) -> RichError:
        with pytest.raises(grpc.RpcError) as caught:
            getattr(self, method)(request)
        return rich_error(caught.value)

    def create_fails(self, body: dict[str, Any]) -> RichError:
        return self.fails("CreateAdvance", pb.CreateAdvanceRequest(advance=advance_message(body)))

    def apply(
        self, key: str, amount: str, invoice: str = "INV-1", day: str = "2024-06-20"
    ) -> pb.Advance:
        return self.ApplyAdvance(
            pb.ApplyAdvanceRequest(key=key, invoice_number=invoice, amount=amount, applied_date=day)
        )


def configure(engine: Engine, entity: str = "acme", **settings: Any) -> None:
    EntityStore(UnitOfWork(engine)).configure(entity, **settings)


def count_rows(engine: Engine, model: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar_one()


def nothing_written(engine: Engine) -> bool:
    return all(
        count_rows(engine, m) == 0
        for m in (models.Advance, models.AdvanceLine, models.AdvanceApplication)
    )
