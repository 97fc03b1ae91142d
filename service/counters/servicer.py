"""arcus.counters.v1.CounterService: translates messages to use cases and back."""

from collections.abc import Hashable

from arcus.counters.v1 import counters_pb2, counters_pb2_grpc

from service import errors
from service.auth.keys import Principal
from service.counters import domain, messages
from service.counters.service import Counters
from service.rpc.context import current_principal
from service.rpc.status import ok_status_proto, status_for

PACKAGE = counters_pb2.DESCRIPTOR.package


class CounterServicer(counters_pb2_grpc.CounterServiceServicer):
    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def AdvanceCounter(
        self, request: counters_pb2.AdvanceCounterRequest, context: object
    ) -> counters_pb2.AdvanceCounterResponse:
        result = self.counters.advance(current_principal(), messages.advance_request(request))
        return messages.advance_response(result)

    def BatchAdvanceCounters(
        self, request: counters_pb2.BatchAdvanceCountersRequest, context: object
    ) -> counters_pb2.BatchAdvanceCountersResponse:
        """Items apply in request order, in one transaction; an invalid item gets its own
        error status and the others still apply."""
        domain.check_batch_size(len(request.counters))
        results: dict[int, counters_pb2.AdvanceCounterResult] = {}
        valid: dict[int, domain.AdvanceRequest] = {}
        for index, item in enumerate(request.counters):
            try:
                valid[index] = messages.advance_request(item)
            except errors.InvalidArgument as error:
                results[index] = _failed_item(index, error)
        outcomes = self.counters.advance_many(
            current_principal(), list(valid.values()), validate_only=request.validate_only
        )
        for index, outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, Exception):
                results[index] = _failed_item(index, outcome)
            else:
                results[index] = counters_pb2.AdvanceCounterResult(
                    status=ok_status_proto(),
                    response=messages.advance_response(outcome),
                )
        return counters_pb2.BatchAdvanceCountersResponse(
            results=[results[index] for index in range(len(request.counters))]
        )

    def GetCounter(
        self, request: counters_pb2.GetCounterRequest, context: object
    ) -> counters_pb2.Counter:
        violations = errors.Violations()
        name = messages.counter_name(
            request.counter_type, request.series, request.period, violations
        )
        violations.raise_if_any()
        counter = self.counters.get(
            current_principal().tenant, name.counter_type, name.series, name.period
        )
        return messages.counter_message(counter)

    def ListCounters(
        self, request: counters_pb2.ListCountersRequest, context: object
    ) -> counters_pb2.ListCountersResponse:
        filters = messages.list_filters(request)
        page = self.counters.list_page(
            current_principal().tenant,
            request.page_size,
            request.page_token,
            filters.counter_type,
            filters.series,
        )
        return counters_pb2.ListCountersResponse(
            counters=[messages.counter_message(c) for c in page.counters],
            next_page_token=page.next_page_token,
        )

    def IssueNumbers(
        self, request: counters_pb2.IssueNumbersRequest, context: object
    ) -> counters_pb2.IssueNumbersResponse:
        issue = messages.issue_request(request)
        result = self.counters.issue(
            current_principal(), issue.counter_type, issue.count, issue.series, issue.document_date
        )
        return counters_pb2.IssueNumbersResponse(
            counter=messages.counter_message(result.counter),
            numbers=result.numbers,
            first_value=result.first_value,
            last_value=result.last_value,
        )

    def ListCounterEvents(
        self, request: counters_pb2.ListCounterEventsRequest, context: object
    ) -> counters_pb2.ListCounterEventsResponse:
        filters = messages.event_filters(request)
        page = self.counters.events_page(
            current_principal().tenant,
            request.page_size,
            request.page_token,
            filters.counter_type,
            filters.series,
            filters.period,
        )
        return counters_pb2.ListCounterEventsResponse(
            events=[messages.event_message(e) for e in page.events],
            next_page_token=page.next_page_token,
        )

    def VoidNumbers(
        self, request: counters_pb2.VoidNumbersRequest, context: object
    ) -> counters_pb2.VoidNumbersResponse:
        result = self.counters.void(current_principal(), messages.void_request(request))
        return counters_pb2.VoidNumbersResponse(
            numbers=result.numbers, event=messages.event_message(result.event)
        )

    def UpdateCounter(
        self, request: counters_pb2.UpdateCounterRequest, context: object
    ) -> counters_pb2.Counter:
        update = messages.update_request(request)
        name = update.name
        counter = self.counters.update(
            current_principal(), name.counter_type, name.series, update.changes, name.period
        )
        return messages.counter_message(counter)


def issue_group(request: counters_pb2.IssueNumbersRequest, principal: Principal) -> Hashable:
    """IssueNumbers calls that draw from the same counter and period (same entity, mode,
    type, series and document date) run together, sharing one transaction (db/coalesce.py)."""
    return (principal.tenant, request.counter_type, request.series, request.document_date)


def _failed_item(index: int, error: Exception) -> counters_pb2.AdvanceCounterResult:
    if isinstance(error, errors.InvalidArgument):
        error = error.under(f"counters[{index}].")
    where = f"BatchAdvanceCounters item {index}"
    return counters_pb2.AdvanceCounterResult(status=status_for(error, PACKAGE, where))
