"""arcus.receivables.v1.AdvanceService: translates messages to use cases and back."""

from typing import Any

from arcus.receivables.v1 import advances_pb2 as pb
from arcus.receivables.v1 import advances_pb2_grpc
from google.protobuf.empty_pb2 import Empty

from service import errors
from service.advances import messages
from service.advances.domain import Advance
from service.advances.service import Advances, NewAdvance
from service.errors import Violations
from service.rpc.context import current_principal
from service.rpc.status import ok_status_proto, status_for
from service.values import check_identifier, check_text, parse_amount


def _rendered(advance: Advance) -> tuple[pb.Advance, int]:
    message = messages.full(advance)
    return message, message.ByteSize()


class AdvanceServicer(advances_pb2_grpc.AdvanceServiceServicer):
    def __init__(self, advances: Advances) -> None:
        self.advances = advances

    def CreateAdvance(self, request: pb.CreateAdvanceRequest, context: object) -> pb.Advance:
        fields, number, state = messages.parse_create(request.advance)
        created = self.advances.create(
            current_principal(), fields, number, state, request.validate_only
        )
        return messages.full(created)

    def BatchCreateAdvances(
        self, request: pb.BatchCreateAdvancesRequest, context: object
    ) -> pb.BatchCreateAdvancesResponse:
        """Items are created in request order, in one transaction; an invalid item gets
        its own error status and the others are still created."""
        messages.check_batch(request)
        items: list[NewAdvance | Exception] = []
        for item in request.requests:
            try:
                fields, number, state = messages.parse_create(item.advance)
            except errors.InvalidArgument as error:
                items.append(error)
                continue
            validate_only = request.validate_only or item.validate_only
            items.append(NewAdvance(fields, number, state, validate_only))
        outcomes = self.advances.create_many(current_principal(), items)
        return pb.BatchCreateAdvancesResponse(
            results=[_result(index, outcome) for index, outcome in enumerate(outcomes)]
        )

    def GetAdvance(self, request: pb.GetAdvanceRequest, context: object) -> pb.Advance:
        tenant = current_principal().tenant
        if request.advance_number and not request.key:
            number = messages.only_number(request.advance_number)
            return messages.full(self.advances.get_by_number(tenant, number))
        if request.advance_number:
            messages.one_of_key_and_number()
        return messages.full(self.advances.get(tenant, messages.only_key(request.key)))

    def ListAdvances(
        self, request: pb.ListAdvancesRequest, context: object
    ) -> pb.ListAdvancesResponse:
        violations = Violations()
        filters = messages.list_filters(request, violations)
        full = messages.full_view(request.view, violations)
        violations.raise_if_any()
        page = self.advances.list_page(
            current_principal().tenant,
            filters,
            request.page_size,
            request.page_token,
            _rendered if full else None,
        )
        return pb.ListAdvancesResponse(
            advances=page.rendered if full else [messages.basic(key) for key in page.keys],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    def UpdateAdvance(self, request: pb.UpdateAdvanceRequest, context: object) -> pb.Advance:
        u = messages.parse_update(request)
        updated = self.advances.update(
            current_principal(), u.key, u.patch, u.attributes, u.etag, u.advance_number
        )
        return messages.full(updated)

    def DeleteAdvance(self, request: pb.DeleteAdvanceRequest, context: object) -> Empty:
        self.advances.delete(current_principal(), messages.only_key(request.key), request.etag)
        return Empty()

    def SubmitAdvance(self, request: pb.SubmitAdvanceRequest, context: object) -> pb.Advance:
        key = messages.only_key(request.key)
        return messages.full(self.advances.submit(current_principal(), key))

    def ReverseAdvance(self, request: pb.ReverseAdvanceRequest, context: object) -> pb.Advance:
        violations = Violations()
        key = messages.parse_key(request.key, violations)
        day = messages.required_date(request.reversed_date, violations, "reversed_date")
        memo = check_text(request.memo, violations, "memo", max_length=1000)
        violations.raise_if_any()
        assert day is not None
        return messages.full(self.advances.reverse(current_principal(), key, day, memo))

    def ApplyAdvance(self, request: pb.ApplyAdvanceRequest, context: object) -> pb.Advance:
        violations = Violations()
        key = messages.parse_key(request.key, violations)
        invoice = messages.required_identifier(request.invoice_number, violations, "invoice_number")
        amount = None
        if request.amount:
            amount = parse_amount(request.amount, violations, "amount")
        else:
            violations.add("amount", "is required", "FIELD_REQUIRED")
        day = messages.required_date(request.applied_date, violations, "applied_date")
        violations.raise_if_any()
        assert amount is not None and day is not None
        return messages.full(self.advances.apply(current_principal(), key, invoice, amount, day))

    def UnapplyAdvance(self, request: pb.UnapplyAdvanceRequest, context: object) -> pb.Advance:
        violations = Violations()
        key = messages.parse_key(request.key, violations)
        application_key = 0
        if request.application_key:
            application_key = messages.parse_key(
                request.application_key, violations, "application_key"
            )
            invoice = check_identifier(request.invoice_number, violations, "invoice_number")
        else:
            invoice = messages.required_identifier(
                request.invoice_number, violations, "invoice_number"
            )
        violations.raise_if_any()
        return messages.full(
            self.advances.unapply(current_principal(), key, invoice, application_key)
        )


def _result(index: int, outcome: Advance | Exception) -> dict[str, Any]:
    """A CreateAdvanceResult's fields, for the response's constructor to build in place
    (as messages.full_fields): a result built as a message would be copied in whole."""
    if not isinstance(outcome, Exception):
        return {"status": ok_status_proto(), "advance": messages.full_fields(outcome)}
    if isinstance(outcome, errors.InvalidArgument):
        outcome = outcome.under(f"requests[{index}].")
    where = f"BatchCreateAdvances item {index}"
    return {"status": status_for(outcome, pb.DESCRIPTOR.package, where)}
