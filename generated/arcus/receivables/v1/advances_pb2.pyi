import datetime

from arcus.auth.v1 import scopes_pb2 as _scopes_pb2
from arcus.errors.v1 import errors_pb2 as _errors_pb2
from google.protobuf import empty_pb2 as _empty_pb2
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

class AdvanceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADVANCE_STATE_UNSPECIFIED: _ClassVar[AdvanceState]
    ADVANCE_STATE_DRAFT: _ClassVar[AdvanceState]
    ADVANCE_STATE_POSTED: _ClassVar[AdvanceState]
    ADVANCE_STATE_PARTIALLY_APPLIED: _ClassVar[AdvanceState]
    ADVANCE_STATE_FULLY_APPLIED: _ClassVar[AdvanceState]
    ADVANCE_STATE_REVERSED: _ClassVar[AdvanceState]

class PaymentMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PAYMENT_METHOD_UNSPECIFIED: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_PRINTED_CHECK: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_CREDIT_CARD: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_EFT: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_CASH: _ClassVar[PaymentMethod]
    PAYMENT_METHOD_ACH: _ClassVar[PaymentMethod]

class AdvanceView(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ADVANCE_VIEW_UNSPECIFIED: _ClassVar[AdvanceView]
    ADVANCE_VIEW_BASIC: _ClassVar[AdvanceView]
    ADVANCE_VIEW_FULL: _ClassVar[AdvanceView]
ADVANCE_STATE_UNSPECIFIED: AdvanceState
ADVANCE_STATE_DRAFT: AdvanceState
ADVANCE_STATE_POSTED: AdvanceState
ADVANCE_STATE_PARTIALLY_APPLIED: AdvanceState
ADVANCE_STATE_FULLY_APPLIED: AdvanceState
ADVANCE_STATE_REVERSED: AdvanceState
PAYMENT_METHOD_UNSPECIFIED: PaymentMethod
PAYMENT_METHOD_PRINTED_CHECK: PaymentMethod
PAYMENT_METHOD_CREDIT_CARD: PaymentMethod
PAYMENT_METHOD_EFT: PaymentMethod
PAYMENT_METHOD_CASH: PaymentMethod
PAYMENT_METHOD_ACH: PaymentMethod
ADVANCE_VIEW_UNSPECIFIED: AdvanceView
ADVANCE_VIEW_BASIC: AdvanceView
ADVANCE_VIEW_FULL: AdvanceView

class Advance(_message.Message):
    __slots__ = ("key", "id", "href", "advance_number", "customer", "reference_number", "description", "state", "total_entered", "txn_total_entered", "payment_information", "advance_summary", "gl_account", "attachment", "items", "audit", "etag", "reversed_date", "applications", "unapplied_applications")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    HREF_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ENTERED_FIELD_NUMBER: _ClassVar[int]
    TXN_TOTAL_ENTERED_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_INFORMATION_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    GL_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ATTACHMENT_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    REVERSED_DATE_FIELD_NUMBER: _ClassVar[int]
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    UNAPPLIED_APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    key: str
    id: str
    href: str
    advance_number: str
    customer: Customer
    reference_number: str
    description: str
    state: AdvanceState
    total_entered: str
    txn_total_entered: str
    payment_information: PaymentInformation
    advance_summary: AdvanceSummary
    gl_account: AdvanceGlAccount
    attachment: Attachment
    items: _containers.RepeatedCompositeFieldContainer[AdvanceLine]
    audit: Audit
    etag: str
    reversed_date: str
    applications: _containers.RepeatedCompositeFieldContainer[Application]
    unapplied_applications: _containers.RepeatedCompositeFieldContainer[Application]
    def __init__(self, key: _Optional[str] = ..., id: _Optional[str] = ..., href: _Optional[str] = ..., advance_number: _Optional[str] = ..., customer: _Optional[_Union[Customer, _Mapping]] = ..., reference_number: _Optional[str] = ..., description: _Optional[str] = ..., state: _Optional[_Union[AdvanceState, str]] = ..., total_entered: _Optional[str] = ..., txn_total_entered: _Optional[str] = ..., payment_information: _Optional[_Union[PaymentInformation, _Mapping]] = ..., advance_summary: _Optional[_Union[AdvanceSummary, _Mapping]] = ..., gl_account: _Optional[_Union[AdvanceGlAccount, _Mapping]] = ..., attachment: _Optional[_Union[Attachment, _Mapping]] = ..., items: _Optional[_Iterable[_Union[AdvanceLine, _Mapping]]] = ..., audit: _Optional[_Union[Audit, _Mapping]] = ..., etag: _Optional[str] = ..., reversed_date: _Optional[str] = ..., applications: _Optional[_Iterable[_Union[Application, _Mapping]]] = ..., unapplied_applications: _Optional[_Iterable[_Union[Application, _Mapping]]] = ...) -> None: ...

class Customer(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class PaymentInformation(_message.Message):
    __slots__ = ("payment_date", "receipt_date", "payment_method", "financial_entity", "currency", "total_paid", "txn_total_paid", "total_selected", "txn_total_selected", "total_due", "total_txn_amount_due")
    PAYMENT_DATE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_DATE_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_METHOD_FIELD_NUMBER: _ClassVar[int]
    FINANCIAL_ENTITY_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_PAID_FIELD_NUMBER: _ClassVar[int]
    TXN_TOTAL_PAID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SELECTED_FIELD_NUMBER: _ClassVar[int]
    TXN_TOTAL_SELECTED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DUE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TXN_AMOUNT_DUE_FIELD_NUMBER: _ClassVar[int]
    payment_date: str
    receipt_date: str
    payment_method: PaymentMethod
    financial_entity: FinancialEntity
    currency: Currency
    total_paid: str
    txn_total_paid: str
    total_selected: str
    txn_total_selected: str
    total_due: str
    total_txn_amount_due: str
    def __init__(self, payment_date: _Optional[str] = ..., receipt_date: _Optional[str] = ..., payment_method: _Optional[_Union[PaymentMethod, str]] = ..., financial_entity: _Optional[_Union[FinancialEntity, _Mapping]] = ..., currency: _Optional[_Union[Currency, _Mapping]] = ..., total_paid: _Optional[str] = ..., txn_total_paid: _Optional[str] = ..., total_selected: _Optional[str] = ..., txn_total_selected: _Optional[str] = ..., total_due: _Optional[str] = ..., total_txn_amount_due: _Optional[str] = ...) -> None: ...

class FinancialEntity(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Currency(_message.Message):
    __slots__ = ("base_currency", "txn_currency", "exchange_rate_date", "exchange_rate_type_id", "exchange_rate")
    BASE_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    TXN_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_RATE_DATE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_RATE_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_RATE_FIELD_NUMBER: _ClassVar[int]
    base_currency: str
    txn_currency: str
    exchange_rate_date: str
    exchange_rate_type_id: str
    exchange_rate: str
    def __init__(self, base_currency: _Optional[str] = ..., txn_currency: _Optional[str] = ..., exchange_rate_date: _Optional[str] = ..., exchange_rate_type_id: _Optional[str] = ..., exchange_rate: _Optional[str] = ...) -> None: ...

class AdvanceSummary(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AdvanceGlAccount(_message.Message):
    __slots__ = ("id", "undeposited_gl_account_number")
    ID_FIELD_NUMBER: _ClassVar[int]
    UNDEPOSITED_GL_ACCOUNT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    id: str
    undeposited_gl_account_number: str
    def __init__(self, id: _Optional[str] = ..., undeposited_gl_account_number: _Optional[str] = ...) -> None: ...

class Attachment(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AdvanceLine(_message.Message):
    __slots__ = ("key", "id", "line_number", "gl_account", "account_label", "txn_amount", "base_amount", "memo", "dimensions")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LINE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    GL_ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_LABEL_FIELD_NUMBER: _ClassVar[int]
    TXN_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BASE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    key: str
    id: str
    line_number: int
    gl_account: LineGlAccount
    account_label: AccountLabel
    txn_amount: str
    base_amount: str
    memo: str
    dimensions: Dimensions
    def __init__(self, key: _Optional[str] = ..., id: _Optional[str] = ..., line_number: _Optional[int] = ..., gl_account: _Optional[_Union[LineGlAccount, _Mapping]] = ..., account_label: _Optional[_Union[AccountLabel, _Mapping]] = ..., txn_amount: _Optional[str] = ..., base_amount: _Optional[str] = ..., memo: _Optional[str] = ..., dimensions: _Optional[_Union[Dimensions, _Mapping]] = ...) -> None: ...

class LineGlAccount(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class AccountLabel(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Dimensions(_message.Message):
    __slots__ = ("location", "department", "project", "customer", "vendor", "employee", "item")
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    VENDOR_FIELD_NUMBER: _ClassVar[int]
    EMPLOYEE_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    CLASS_FIELD_NUMBER: _ClassVar[int]
    location: Dimension
    department: Dimension
    project: Dimension
    customer: Dimension
    vendor: Dimension
    employee: Dimension
    item: Dimension
    def __init__(self, location: _Optional[_Union[Dimension, _Mapping]] = ..., department: _Optional[_Union[Dimension, _Mapping]] = ..., project: _Optional[_Union[Dimension, _Mapping]] = ..., customer: _Optional[_Union[Dimension, _Mapping]] = ..., vendor: _Optional[_Union[Dimension, _Mapping]] = ..., employee: _Optional[_Union[Dimension, _Mapping]] = ..., item: _Optional[_Union[Dimension, _Mapping]] = ..., **kwargs) -> None: ...

class Dimension(_message.Message):
    __slots__ = ("id", "name")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class Audit(_message.Message):
    __slots__ = ("create_time", "update_time", "created_by", "modified_by")
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    MODIFIED_BY_FIELD_NUMBER: _ClassVar[int]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    created_by: str
    modified_by: str
    def __init__(self, create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_by: _Optional[str] = ..., modified_by: _Optional[str] = ...) -> None: ...

class Application(_message.Message):
    __slots__ = ("invoice_number", "amount", "base_amount", "applied_date", "key", "apply_time", "applied_by", "unapply_time", "unapplied_by")
    INVOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    BASE_AMOUNT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_DATE_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    APPLY_TIME_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    UNAPPLY_TIME_FIELD_NUMBER: _ClassVar[int]
    UNAPPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    invoice_number: str
    amount: str
    base_amount: str
    applied_date: str
    key: str
    apply_time: _timestamp_pb2.Timestamp
    applied_by: str
    unapply_time: _timestamp_pb2.Timestamp
    unapplied_by: str
    def __init__(self, invoice_number: _Optional[str] = ..., amount: _Optional[str] = ..., base_amount: _Optional[str] = ..., applied_date: _Optional[str] = ..., key: _Optional[str] = ..., apply_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_by: _Optional[str] = ..., unapply_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., unapplied_by: _Optional[str] = ...) -> None: ...

class CreateAdvanceRequest(_message.Message):
    __slots__ = ("advance", "validate_only")
    ADVANCE_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    advance: Advance
    validate_only: bool
    def __init__(self, advance: _Optional[_Union[Advance, _Mapping]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class BatchCreateAdvancesRequest(_message.Message):
    __slots__ = ("requests", "validate_only")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[CreateAdvanceRequest]
    validate_only: bool
    def __init__(self, requests: _Optional[_Iterable[_Union[CreateAdvanceRequest, _Mapping]]] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class BatchCreateAdvancesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CreateAdvanceResult]
    def __init__(self, results: _Optional[_Iterable[_Union[CreateAdvanceResult, _Mapping]]] = ...) -> None: ...

class CreateAdvanceResult(_message.Message):
    __slots__ = ("status", "advance")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_FIELD_NUMBER: _ClassVar[int]
    status: _status_pb2.Status
    advance: Advance
    def __init__(self, status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., advance: _Optional[_Union[Advance, _Mapping]] = ...) -> None: ...

class GetAdvanceRequest(_message.Message):
    __slots__ = ("key", "advance_number")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    key: str
    advance_number: str
    def __init__(self, key: _Optional[str] = ..., advance_number: _Optional[str] = ...) -> None: ...

class ListAdvancesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "customer_id", "state", "view", "advance_number", "reference_number", "payment_date_from", "payment_date_to")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    VIEW_FIELD_NUMBER: _ClassVar[int]
    ADVANCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_DATE_FROM_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_DATE_TO_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    customer_id: str
    state: AdvanceState
    view: AdvanceView
    advance_number: str
    reference_number: str
    payment_date_from: str
    payment_date_to: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., customer_id: _Optional[str] = ..., state: _Optional[_Union[AdvanceState, str]] = ..., view: _Optional[_Union[AdvanceView, str]] = ..., advance_number: _Optional[str] = ..., reference_number: _Optional[str] = ..., payment_date_from: _Optional[str] = ..., payment_date_to: _Optional[str] = ...) -> None: ...

class ListAdvancesResponse(_message.Message):
    __slots__ = ("advances", "next_page_token", "total_size")
    ADVANCES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    advances: _containers.RepeatedCompositeFieldContainer[Advance]
    next_page_token: str
    total_size: int
    def __init__(self, advances: _Optional[_Iterable[_Union[Advance, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class UpdateAdvanceRequest(_message.Message):
    __slots__ = ("advance", "update_mask")
    ADVANCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    advance: Advance
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, advance: _Optional[_Union[Advance, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class DeleteAdvanceRequest(_message.Message):
    __slots__ = ("key", "etag")
    KEY_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    key: str
    etag: str
    def __init__(self, key: _Optional[str] = ..., etag: _Optional[str] = ...) -> None: ...

class SubmitAdvanceRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class ReverseAdvanceRequest(_message.Message):
    __slots__ = ("key", "reversed_date", "memo")
    KEY_FIELD_NUMBER: _ClassVar[int]
    REVERSED_DATE_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    key: str
    reversed_date: str
    memo: str
    def __init__(self, key: _Optional[str] = ..., reversed_date: _Optional[str] = ..., memo: _Optional[str] = ...) -> None: ...

class ApplyAdvanceRequest(_message.Message):
    __slots__ = ("key", "invoice_number", "amount", "applied_date")
    KEY_FIELD_NUMBER: _ClassVar[int]
    INVOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_DATE_FIELD_NUMBER: _ClassVar[int]
    key: str
    invoice_number: str
    amount: str
    applied_date: str
    def __init__(self, key: _Optional[str] = ..., invoice_number: _Optional[str] = ..., amount: _Optional[str] = ..., applied_date: _Optional[str] = ...) -> None: ...

class UnapplyAdvanceRequest(_message.Message):
    __slots__ = ("key", "invoice_number", "application_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    INVOICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    invoice_number: str
    application_key: str
    def __init__(self, key: _Optional[str] = ..., invoice_number: _Optional[str] = ..., application_key: _Optional[str] = ...) -> None: ...
