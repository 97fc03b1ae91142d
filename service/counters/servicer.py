"""arcus.counters.v1.CounterService: translates messages to use cases and back."""

from arcus.counters.v1 import counters_pb2, counters_pb2_grpc

from service import errors
from service.counters import domain
from service.counters.service import Counters
from service.rpc.context import current_principal
from service.rpc.convert import enum_name, enum_value, timestamp
from service.rpc.status import ok_status_proto, status_for

PACKAGE = counters_pb2.DESCRIPTOR.package


def counter_type_name(value: int, violations: errors.Violations, field_path: str) -> str:
    """COUNTER_TYPE_INVOICE -> "invoice"; a violation for UNSPECIFIED or an unknown number."""
    if value == counters_pb2.COUNTER_TYPE_UNSPECIFIED:
        violations.add(field_path, "is required", "COUNTER_TYPE_REQUIRED")
    name = enum_name(
        counters_pb2.CounterType, value, violations, field_path, "COUNTER_TYPE_UNKNOWN"
    )
    return name or ""


def advance_request(message: counters_pb2.AdvanceCounterRequest) -> domain.AdvanceRequest:
    violations = errors.Violations()
    request = domain.AdvanceRequest(
        counter_type=counter_type_name(message.counter_type, violations, "counter_type"),
        advance_to=message.advance_to,
        prefix=message.prefix if message.HasField("prefix") else None,
        padding=message.padding if message.HasField("padding") else None,
    )
    domain.check_advance(request, violations)
    violations.raise_if_any()
    return request


def counter_message(counter: domain.Counter) -> counters_pb2.Counter:
    return counters_pb2.Counter(
        counter_type=enum_value(counters_pb2.CounterType, counter.counter_type),
        prefix=counter.prefix,
        padding=counter.padding,
        current_value=counter.current_value,
        next_number=counter.next_number,
        create_time=timestamp(counter.create_time),
        update_time=timestamp(counter.update_time),
    )


def advance_response(result: domain.AdvanceResult) -> counters_pb2.AdvanceCounterResponse:
    return counters_pb2.AdvanceCounterResponse(
        counter=counter_message(result.counter),
        advanced=result.advanced,
        created=result.created,
        previous_value=result.previous_value,
    )


class CounterServicer(counters_pb2_grpc.CounterServiceServicer):
    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def AdvanceCounter(
        self, request: counters_pb2.AdvanceCounterRequest, context: object
    ) -> counters_pb2.AdvanceCounterResponse:
        result = self.counters.advance(current_principal(), advance_request(request))
        return advance_response(result)

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
                valid[index] = advance_request(item)
            except errors.InvalidArgument as error:
                results[index] = _failed_item(index, error)
        outcomes = self.counters.advance_many(current_principal(), list(valid.values()))
        for index, outcome in zip(valid, outcomes, strict=True):
            if isinstance(outcome, Exception):
                results[index] = _failed_item(index, outcome)
            else:
                results[index] = counters_pb2.AdvanceCounterResult(
                    status=ok_status_proto(),
                    response=advance_response(outcome),
                )
        return counters_pb2.BatchAdvanceCountersResponse(
            results=[results[index] for index in range(len(request.counters))]
        )

    def GetCounter(
        self, request: counters_pb2.GetCounterRequest, context: object
    ) -> counters_pb2.Counter:
        violations = errors.Violations()
        name = counter_type_name(request.counter_type, violations, "counter_type")
        violations.raise_if_any()
        return counter_message(self.counters.get(current_principal().tenant, name))

    def ListCounters(
        self, request: counters_pb2.ListCountersRequest, context: object
    ) -> counters_pb2.ListCountersResponse:
        page = self.counters.list_page(
            current_principal().tenant, request.page_size, request.page_token
        )
        return counters_pb2.ListCountersResponse(
            counters=[counter_message(c) for c in page.counters],
            next_page_token=page.next_page_token,
        )

    def IssueNumbers(
        self, request: counters_pb2.IssueNumbersRequest, context: object
    ) -> counters_pb2.IssueNumbersResponse:
        violations = errors.Violations()
        name = counter_type_name(request.counter_type, violations, "counter_type")
        count = domain.check_issue_count(request.count, violations)
        violations.raise_if_any()
        result = self.counters.issue(current_principal(), name, count)
        return counters_pb2.IssueNumbersResponse(
            counter=counter_message(result.counter),
            numbers=result.numbers,
            first_value=result.first_value,
            last_value=result.last_value,
        )


def _failed_item(index: int, error: Exception) -> counters_pb2.AdvanceCounterResult:
    if isinstance(error, errors.InvalidArgument):
        error = error.under(f"counters[{index}].")
    where = f"BatchAdvanceCounters item {index}"
    return counters_pb2.AdvanceCounterResult(status=status_for(error, PACKAGE, where))
