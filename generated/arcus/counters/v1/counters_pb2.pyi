import datetime

from arcus.auth.v1 import scopes_pb2 as _scopes_pb2
from arcus.errors.v1 import errors_pb2 as _errors_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CounterEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUNTER_EVENT_KIND_UNSPECIFIED: _ClassVar[CounterEventKind]
    COUNTER_EVENT_KIND_CREATED: _ClassVar[CounterEventKind]
    COUNTER_EVENT_KIND_ADVANCED: _ClassVar[CounterEventKind]
    COUNTER_EVENT_KIND_ISSUED: _ClassVar[CounterEventKind]
    COUNTER_EVENT_KIND_VOIDED: _ClassVar[CounterEventKind]
    COUNTER_EVENT_KIND_UPDATED: _ClassVar[CounterEventKind]

class CounterReset(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUNTER_RESET_UNSPECIFIED: _ClassVar[CounterReset]
    COUNTER_RESET_NEVER: _ClassVar[CounterReset]
    COUNTER_RESET_YEARLY: _ClassVar[CounterReset]
    COUNTER_RESET_MONTHLY: _ClassVar[CounterReset]
    COUNTER_RESET_FISCAL_YEARLY: _ClassVar[CounterReset]

class CounterType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUNTER_TYPE_UNSPECIFIED: _ClassVar[CounterType]
    COUNTER_TYPE_ORDER: _ClassVar[CounterType]
    COUNTER_TYPE_INVOICE: _ClassVar[CounterType]
    COUNTER_TYPE_QUOTE: _ClassVar[CounterType]
    COUNTER_TYPE_PO: _ClassVar[CounterType]
    COUNTER_TYPE_RMA: _ClassVar[CounterType]
    COUNTER_TYPE_JOURNAL: _ClassVar[CounterType]
    COUNTER_TYPE_ACCOUNT: _ClassVar[CounterType]
    COUNTER_TYPE_VENDOR_BILL: _ClassVar[CounterType]
    COUNTER_TYPE_AP_PAYMENT: _ClassVar[CounterType]
    COUNTER_TYPE_CHECK: _ClassVar[CounterType]
    COUNTER_TYPE_TRANSFER: _ClassVar[CounterType]
    COUNTER_TYPE_VENDOR_RETURN: _ClassVar[CounterType]
    COUNTER_TYPE_REFUND: _ClassVar[CounterType]
    COUNTER_TYPE_INVENTORY_TXN: _ClassVar[CounterType]
    COUNTER_TYPE_WORK_ORDER: _ClassVar[CounterType]
    COUNTER_TYPE_FIXED_ASSET: _ClassVar[CounterType]
    COUNTER_TYPE_LEASE: _ClassVar[CounterType]
    COUNTER_TYPE_LEASE_PAYMENT: _ClassVar[CounterType]
    COUNTER_TYPE_DEPOSIT: _ClassVar[CounterType]
    COUNTER_TYPE_VENDOR_CREDIT: _ClassVar[CounterType]
    COUNTER_TYPE_PAYMENT_BATCH: _ClassVar[CounterType]
    COUNTER_TYPE_AR_ADVANCE: _ClassVar[CounterType]
COUNTER_EVENT_KIND_UNSPECIFIED: CounterEventKind
COUNTER_EVENT_KIND_CREATED: CounterEventKind
COUNTER_EVENT_KIND_ADVANCED: CounterEventKind
COUNTER_EVENT_KIND_ISSUED: CounterEventKind
COUNTER_EVENT_KIND_VOIDED: CounterEventKind
COUNTER_EVENT_KIND_UPDATED: CounterEventKind
COUNTER_RESET_UNSPECIFIED: CounterReset
COUNTER_RESET_NEVER: CounterReset
COUNTER_RESET_YEARLY: CounterReset
COUNTER_RESET_MONTHLY: CounterReset
COUNTER_RESET_FISCAL_YEARLY: CounterReset
COUNTER_TYPE_UNSPECIFIED: CounterType
COUNTER_TYPE_ORDER: CounterType
COUNTER_TYPE_INVOICE: CounterType
COUNTER_TYPE_QUOTE: CounterType
COUNTER_TYPE_PO: CounterType
COUNTER_TYPE_RMA: CounterType
COUNTER_TYPE_JOURNAL: CounterType
COUNTER_TYPE_ACCOUNT: CounterType
COUNTER_TYPE_VENDOR_BILL: CounterType
COUNTER_TYPE_AP_PAYMENT: CounterType
COUNTER_TYPE_CHECK: CounterType
COUNTER_TYPE_TRANSFER: CounterType
COUNTER_TYPE_VENDOR_RETURN: CounterType
COUNTER_TYPE_REFUND: CounterType
COUNTER_TYPE_INVENTORY_TXN: CounterType
COUNTER_TYPE_WORK_ORDER: CounterType
COUNTER_TYPE_FIXED_ASSET: CounterType
COUNTER_TYPE_LEASE: CounterType
COUNTER_TYPE_LEASE_PAYMENT: CounterType
COUNTER_TYPE_DEPOSIT: CounterType
COUNTER_TYPE_VENDOR_CREDIT: CounterType
COUNTER_TYPE_PAYMENT_BATCH: CounterType
COUNTER_TYPE_AR_ADVANCE: CounterType

class Counter(_message.Message):
    __slots__ = ("counter_type", "prefix", "padding", "current_value", "next_number", "create_time", "update_time", "series", "period", "suffix", "reset")
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    counter_type: CounterType
    prefix: str
    padding: int
    current_value: int
    next_number: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    series: str
    period: str
    suffix: str
    reset: CounterReset
    def __init__(self, counter_type: _Optional[_Union[CounterType, str]] = ..., prefix: _Optional[str] = ..., padding: _Optional[int] = ..., current_value: _Optional[int] = ..., next_number: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., series: _Optional[str] = ..., period: _Optional[str] = ..., suffix: _Optional[str] = ..., reset: _Optional[_Union[CounterReset, str]] = ...) -> None: ...

class AdvanceCounterRequest(_message.Message):
    __slots__ = ("counter_type", "advance_to", "prefix", "padding", "series", "period", "suffix", "reset", "validate_only", "expected_current_value")
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_TO_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PADDING_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SUFFIX_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_CURRENT_VALUE_FIELD_NUMBER: _ClassVar[int]
    counter_type: CounterType
    advance_to: int
    prefix: str
    padding: int
    series: str
    period: str
    suffix: str
    reset: CounterReset
    validate_only: bool
    expected_current_value: int
    def __init__(self, counter_type: _Optional[_Union[CounterType, str]] = ..., advance_to: _Optional[int] = ..., prefix: _Optional[str] = ..., padding: _Optional[int] = ..., series: _Optional[str] = ..., period: _Optional[str] = ..., suffix: _Optional[str] = ..., reset: _Optional[_Union[CounterReset, str]] = ..., validate_only: _Optional[bool] = ..., expected_current_value: _Optional[int] = ...) -> None: ...

class AdvanceCounterResponse(_message.Message):
    __slots__ = ("counter", "advanced", "created", "previous_value")
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    ADVANCED_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALUE_FIELD_NUMBER: _ClassVar[int]
    counter: Counter
    advanced: bool
    created: bool
    previous_value: int
    def __init__(self, counter: _Optional[_Union[Counter, _Mapping]] = ..., advanced: _Optional[bool] = ..., created: _Optional[bool] = ..., previous_value: _Optional[int] = ...) -> None: ...

class BatchAdvanceCountersRequest(_message.Message):
    __slots__ = ("counters", "validate_only")
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    counters: _containers.RepeatedCompositeFieldContainer[AdvanceCounterRequest]
    validate_only: bool
    def __init__(self, counters: _Optional[_Iterable[_Union[AdvanceCounterRequest, _Mapping]]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class BatchAdvanceCountersResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[AdvanceCounterResult]
    def __init__(self, results: _Optional[_Iterable[_Union[AdvanceCounterResult, _Mapping]]] = ...) -> None: ...

class AdvanceCounterResult(_message.Message):
    __slots__ = ("status", "response")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    response: AdvanceCounterResponse
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., response: _Optional[_Union[AdvanceCounterResponse, _Mapping]] = ...) -> None: ...

class GetCounterRequest(_message.Message):
    __slots__ = ("counter_type", "series", "period")
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    counter_type: CounterType
    series: str
    period: str
    def __init__(self, counter_type: _Optional[_Union[CounterType, str]] = ..., series: _Optional[str] = ..., period: _Optional[str] = ...) -> None: ...

class ListCountersRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "counter_type", "series")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    counter_type: CounterType
    series: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., counter_type: _Optional[_Union[CounterType, str]] = ..., series: _Optional[str] = ...) -> None: ...

class ListCountersResponse(_message.Message):
    __slots__ = ("counters", "next_page_token")
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    counters: _containers.RepeatedCompositeFieldContainer[Counter]
    next_page_token: str
    def __init__(self, counters: _Optional[_Iterable[_Union[Counter, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class IssueNumbersRequest(_message.Message):
    __slots__ = ("counter_type", "count", "series", "document_date")
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_DATE_FIELD_NUMBER: _ClassVar[int]
    counter_type: CounterType
    count: int
    series: str
    document_date: str
    def __init__(self, counter_type: _Optional[_Union[CounterType, str]] = ..., count: _Optional[int] = ..., series: _Optional[str] = ..., document_date: _Optional[str] = ...) -> None: ...

class IssueNumbersResponse(_message.Message):
    __slots__ = ("counter", "numbers", "first_value", "last_value")
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    FIRST_VALUE_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    counter: Counter
    numbers: _containers.RepeatedScalarFieldContainer[str]
    first_value: int
    last_value: int
    def __init__(self, counter: _Optional[_Union[Counter, _Mapping]] = ..., numbers: _Optional[_Iterable[str]] = ..., first_value: _Optional[int] = ..., last_value: _Optional[int] = ...) -> None: ...

class UpdateCounterRequest(_message.Message):
    __slots__ = ("counter", "update_mask")
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    counter: Counter
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, counter: _Optional[_Union[Counter, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class ListCounterEventsRequest(_message.Message):
    __slots__ = ("counter_type", "series", "period", "page_size", "page_token")
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    counter_type: CounterType
    series: str
    period: str
    page_size: int
    page_token: str
    def __init__(self, counter_type: _Optional[_Union[CounterType, str]] = ..., series: _Optional[str] = ..., period: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCounterEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[CounterEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[CounterEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CounterEvent(_message.Message):
    __slots__ = ("event_id", "counter_type", "series", "period", "kind", "previous_value", "new_value", "first_value", "last_value", "reason", "key_id", "idempotency_key", "create_time")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    FIRST_VALUE_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    counter_type: CounterType
    series: str
    period: str
    kind: CounterEventKind
    previous_value: int
    new_value: int
    first_value: int
    last_value: int
    reason: str
    key_id: str
    idempotency_key: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., counter_type: _Optional[_Union[CounterType, str]] = ..., series: _Optional[str] = ..., period: _Optional[str] = ..., kind: _Optional[_Union[CounterEventKind, str]] = ..., previous_value: _Optional[int] = ..., new_value: _Optional[int] = ..., first_value: _Optional[int] = ..., last_value: _Optional[int] = ..., reason: _Optional[str] = ..., key_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class VoidNumbersRequest(_message.Message):
    __slots__ = ("counter_type", "series", "period", "first_value", "last_value", "reason")
    COUNTER_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    FIRST_VALUE_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    counter_type: CounterType
    series: str
    period: str
    first_value: int
    last_value: int
    reason: str
    def __init__(self, counter_type: _Optional[_Union[CounterType, str]] = ..., series: _Optional[str] = ..., period: _Optional[str] = ..., first_value: _Optional[int] = ..., last_value: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class VoidNumbersResponse(_message.Message):
    __slots__ = ("numbers", "event")
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    numbers: _containers.RepeatedScalarFieldContainer[str]
    event: CounterEvent
    def __init__(self, numbers: _Optional[_Iterable[str]] = ..., event: _Optional[_Union[CounterEvent, _Mapping]] = ...) -> None: ...
