"""Requests for the hostile-input fuzz test (test_hostile_input.py).

Three kinds, for every RPC:
- arbitrary: any message its descriptor allows (`message_of`), strings from WEIRD and beyond;
- valid: built against objects made through the API at example time (`World.valid`), so
  that it consumes nothing another example needs: a fresh DRAFT to submit, a fresh POSTED
  advance to apply, an applied one to unapply...;
- mutated: a valid request with one or two fields replaced by arbitrary values (`mutated`).
"""

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar, cast
from uuid import uuid4

import grpc
from arcus.counters.v1 import counters_pb2 as cpb
from arcus.counters.v1 import counters_pb2_grpc
from arcus.receivables.v1 import advances_pb2 as apb
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from hypothesis import strategies as st

from tests.advances import Client, advance_message, item, payload
from tests.support import auth, counter_type_of

# Arbitrary values.

WEIRD = [
    "", " ", "0", "-3", "1e5", "12.345", "500", "0.01", "9" * 40, "2024-02-30", "2024-06-13",
    "\x00", "\u202e", "\U0001d518\U0001d52b", "INV-", "ark_live_ent_x", "*", "items",
    "items.txn_amount",
    "payment_information", "state", "customer.id", "1", "18446744073709551616", "NaN",
]  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(WEIRD), st.text(max_size=40), st.text(min_size=1000, max_size=5000)
)
INTS = {
    FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_ENUM: st.integers(-3, 40),
    FieldDescriptor.TYPE_BOOL: st.booleans(),
}


def _skipped(field: FieldDescriptor, depth: int) -> bool:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        return depth > 4 or field.message_type.full_name.startswith("google.protobuf.Timestamp")
    return field.type != FieldDescriptor.TYPE_STRING and field.type not in INTS


def _value_of(field: FieldDescriptor, depth: int) -> st.SearchStrategy:
    """Arbitrary values of one field (a list of them for a repeated field)."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        assert field.message_type is not None
        value = message_of(field.message_type, depth + 1)
    elif field.type == FieldDescriptor.TYPE_STRING:
        value = TEXT
    else:
        value = INTS[field.type]
    if field.is_repeated:
        value = st.lists(value, max_size=3 if depth else 4)
    return value


def message_of(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy:
    """Arbitrary instances of a message: every field maybe set, to anything its type allows."""
    cls = GetMessageClass(descriptor)
    fields = {
        field.name: st.one_of(st.none(), _value_of(field, depth))
        for field in descriptor.fields
        if not _skipped(field, depth)
    }

    def build(values: dict) -> object:
        message = cls()
        for name, value in values.items():
            if value is not None:
                _set(message, descriptor.fields_by_name[name], value)
        return message

    return st.fixed_dictionaries(fields).map(build)


def _set(message: Any, field: FieldDescriptor, value: Any) -> None:
    if field.is_repeated:
        del getattr(message, field.name)[:]
        getattr(message, field.name).extend(value)
    elif field.type == FieldDescriptor.TYPE_MESSAGE:
        getattr(message, field.name).CopyFrom(value)
    else:
        setattr(message, field.name, value)


def mutated(data: st.DataObject, request: Message) -> Message:
    """`request` with one to three fields (anywhere in it) replaced by arbitrary values."""
    copy = type(request)()
    copy.CopyFrom(request)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutate_in(data, copy, depth=0)
    return copy


def _mutate_in(data: st.DataObject, message: Any, depth: int) -> None:
    fields = [f for f in message.DESCRIPTOR.fields if not _skipped(f, depth)]
    if not fields:
        return
    field = data.draw(st.sampled_from(fields), label="mutated field")
    if field.type == FieldDescriptor.TYPE_MESSAGE and data.draw(st.booleans(), label="inside"):
        if field.is_repeated:
            elements = getattr(message, field.name)
            if elements:
                index = data.draw(st.integers(0, len(elements) - 1))
                _mutate_in(data, elements[index], depth + 1)
                return
        elif message.HasField(field.name):
            _mutate_in(data, getattr(message, field.name), depth + 1)
            return
    _set(message, field, data.draw(_value_of(field, depth), label=field.name))


# Valid values.

COUNTER_TYPES = [v for v in cpb.CounterType.values() if v]
# What str.isprintable() accepts: no control, format, private, unassigned or separator
# characters but the space.
PRINTABLE = st.characters(
    exclude_categories=["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"], include_characters=" "
)
PREFIXES = st.one_of(
    st.sampled_from(["INV-", "", "SO-", "ADV-", "\U0001d518", "INV/{YYYY}/", "{FY}-{MM}", "/{YY}"]),
    st.text(PRINTABLE.filter(lambda c: c not in "{}"), max_size=20),
)
SERIES = st.sampled_from(["", "", "", "EU", "returns.2"])
RESETS = [v for v in cpb.CounterReset.values()]  # UNSPECIFIED too: NEVER on create
DAYS = st.dates(date(2020, 1, 1), date(2030, 12, 31))
FISCAL_START = 1  # the fuzzed entity keeps the default settings


def day_in(period: str) -> str:
    """A date inside `period` (with the default fiscal year); "" for a never-resetting one."""
    if not period:
        return ""
    year = period.removeprefix("FY")[:4]
    month = period[5:] if len(period) == 7 else "06"
    return f"{year}-{month}-15"


def period_in(reset: int, day: date, fiscal_start: int) -> str:
    """The name of the period `day` falls in under `reset`."""
    if reset == cpb.COUNTER_RESET_YEARLY:
        return f"{day.year:04d}"
    if reset == cpb.COUNTER_RESET_MONTHLY:
        return f"{day.year:04d}-{day.month:02d}"
    if reset == cpb.COUNTER_RESET_FISCAL_YEARLY:
        year = day.year + (1 if fiscal_start > 1 and day.month >= fiscal_start else 0)
        return f"FY{year:04d}"
    return ""


IDENTIFIERS = st.one_of(
    st.sampled_from(["C-00019", "BOA", "2200", "CA", " ", "\U0001d518\U0001d52b", "x" * 100]),
    st.text(PRINTABLE, min_size=1, max_size=30),
)
FREE_TEXT = st.one_of(
    st.sampled_from(["", "memo\nwith a newline\tand a tab", "\U0001d518" * 1000]),
    st.text(st.one_of(PRINTABLE, st.sampled_from("\n\t")), max_size=60),
)
DATES = st.dates(date(1990, 1, 1), date(2100, 12, 31))
CENTS = st.one_of(st.integers(1, 100_000), st.integers(1, 10**11))


# Hypothesis requires the draws of an example to depend on nothing but earlier draws: never
# on what the server answered, nor on what earlier examples left in the database. So what
# is drawn, and its bounds, are always the same; the answers only decide how it is used.


def pick(data: st.DataObject, options: list[Any], label: str) -> Any:
    """One of `options` (at most 8 of them), however many there are."""
    return options[data.draw(st.integers(0, 7), label=label) % len(options)]


def part_of(data: st.DataObject, total: int) -> int:
    """1..total cents (total >= 1): often all of it."""
    share = data.draw(st.one_of(st.just(10**6), st.integers(1, 10**6)), label="share")
    return max(1, total * share // 10**6)


def amount_text(data: st.DataObject, cents: int) -> str:
    """`cents` as one of the decimal strings the API takes for it: "500", "500.0", "0500.00"."""
    whole, fraction = divmod(cents, 100)
    forms = [f"{whole}.{fraction:02d}", f"0{whole}.{fraction:02d}"]
    if fraction == 0:
        forms.append(str(whole))
    if fraction % 10 == 0:
        forms.append(f"{whole}.{fraction // 10}")
    return pick(data, forms, "amount")


def cents_of(text: str) -> int:
    return int(Decimal(text) * 100)


def _rate(data: st.DataObject) -> str:
    """A valid rate: 1..20 with up to 8 decimals (at most 10 significant digits, and no
    line's base amount rounds to 0.00)."""
    whole = data.draw(st.integers(1, 20), label="rate")
    digits = data.draw(st.text("0123456789", min_size=0, max_size=8), label="rate digits")
    return f"{whole}.{digits}" if digits else str(whole)


def currency(data: st.DataObject) -> dict[str, str] | None:
    choice = data.draw(st.sampled_from(["none", "usd", "usd-1", "foreign"]), label="currency")
    if choice == "none":
        return None
    if choice == "usd":
        return {"txnCurrency": "USD"}
    if choice == "usd-1":
        return {"txnCurrency": "USD", "exchangeRate": "1.000", "exchangeRateTypeId": "Spot"}
    return {
        "txnCurrency": data.draw(st.sampled_from(["EUR", "JPY", "GBP", "CHF"])),
        "exchangeRate": _rate(data),
        "exchangeRateDate": str(data.draw(DATES)),
    }


def line(data: st.DataObject) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if data.draw(st.booleans(), label="line extras"):
        extra["memo"] = data.draw(FREE_TEXT)
        extra["accountLabel"] = {"id": data.draw(IDENTIFIERS)}
        extra["glAccount"] = {"id": data.draw(IDENTIFIERS), "name": data.draw(IDENTIFIERS)}
    body = item(amount_text(data, data.draw(CENTS)), **extra)
    if data.draw(st.booleans(), label="more dimensions"):
        for name in data.draw(st.lists(st.sampled_from(["department", "project", "class"]))):
            body["dimensions"][name] = {"id": data.draw(IDENTIFIERS)}
    return body


def advance_body(data: st.DataObject, state: str = "") -> dict[str, Any]:
    """A valid create payload: the reference's, varied. `state`: DRAFT, POSTED or ""."""
    receipt = data.draw(DATES, label="receipt date")
    information: dict[str, Any] = {
        "paymentDate": str(data.draw(DATES)),
        "receiptDate": str(receipt),
        "paymentMethod": data.draw(st.integers(1, 5), label="payment method"),
    }
    if data.draw(st.booleans(), label="financial entity"):
        information["financialEntity"] = {"id": data.draw(IDENTIFIERS)}
    if (chosen := currency(data)) is not None:
        information["currency"] = chosen
    body = payload(
        customer={"id": data.draw(IDENTIFIERS, label="customer")},
        paymentInformation=information,
        items=[line(data) for _ in range(data.draw(st.integers(1, 3), label="lines"))],
    )
    if data.draw(st.booleans(), label="optional fields"):
        body["customer"]["name"] = data.draw(IDENTIFIERS)
        body["referenceNumber"] = data.draw(IDENTIFIERS)
        body["description"] = data.draw(FREE_TEXT)
        body["glAccount"] = {"undepositedGLAccountNumber": data.draw(IDENTIFIERS)}
        body["attachment"] = {"id": data.draw(IDENTIFIERS)}
    if state:
        body["state"] = f"ADVANCE_STATE_{state}"
    return body


# Update mask paths a valid update may name (each a writable field, or a message of them).
UPDATE_PATHS = [
    "customer", "customer.id", "customer.name", "reference_number", "description",
    "payment_information.payment_date", "payment_information.receipt_date",
    "payment_information.payment_method", "payment_information.financial_entity.id",
    "payment_information.currency", "advance_summary.id", "gl_account", "attachment.id", "items",
]  # fmt: skip


def _day_after(data: st.DataObject, day: str) -> str:
    return str(date.fromisoformat(day) + timedelta(days=data.draw(st.integers(0, 400))))


class World:
    """Real objects made through the API, and valid requests against them."""

    def __init__(self, channel: Any, key: str) -> None:
        self.client = Client(channel, key)
        self.counters = counters_pb2_grpc.CounterServiceStub(channel)
        self.metadata = auth(key)
        # The reset chosen for a new (counter type, series) by an earlier item of the
        # request being built.
        self.pending: dict[tuple[int, str], int] = {}

    # Objects.

    def counter(
        self, data: st.DataObject, value: int | None = None, series: str | None = None
    ) -> cpb.Counter:
        """A counter of a drawn type, series and period, made (or advanced) for real."""
        request = self.advance_counter_request(data, series)
        self.pending.clear()
        request.validate_only = False
        request.ClearField("expected_current_value")
        if value is not None:
            request.advance_to = value
        response = self.counters.AdvanceCounter(request, metadata=self.metadata)
        return response.counter

    def reset_of(self, counter_type: int, series: str) -> int | None:
        """The reset of a series, stored or pending; None when it has none yet."""
        if (counter_type, series) in self.pending:
            return self.pending[(counter_type, series)]
        found = self.stored(counter_type, series, "")
        return None if found is None else found.reset

    def stored(self, counter_type: int, series: str, period: str) -> cpb.Counter | None:
        try:
            return self.counters.GetCounter(
                cpb.GetCounterRequest(
                    counter_type=counter_type_of(counter_type), series=series, period=period
                ),
                metadata=self.metadata,
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None

    def advance(self, data: st.DataObject, state: str = "POSTED") -> apb.Advance:
        return self.client.create(advance_body(data, state))

    def applied(self, data: st.DataObject, count: int, leave: int = 0) -> apb.Advance:
        """A fresh POSTED advance applied up to `count` times, leaving at least `leave`
        cents due: the first time always (a fresh advance is due at least 1 cent)."""
        advance = self.advance(data)
        for _ in range(count):
            due = cents_of(advance.payment_information.total_txn_amount_due) - leave
            amount = amount_text(data, part_of(data, max(due, 1)))
            invoice = data.draw(st.sampled_from(["INV-1", "INV-2", "INV-3"]), label="invoice")
            day = _day_after(data, advance.payment_information.receipt_date)
            if due > 0:
                advance = self.client.apply(advance.key, amount, invoice, day)
        return advance

    # Valid requests, one per RPC.

    def valid(self, rpc: str, data: st.DataObject) -> Message:
        return self.BUILDERS[rpc](self, data)

    def advance_counter_request(
        self, data: st.DataObject, series: str | None = None
    ) -> cpb.AdvanceCounterRequest:
        counter_type = data.draw(st.sampled_from(COUNTER_TYPES), label="counter type")
        if series is None:
            series = data.draw(SERIES, label="series")
        request = cpb.AdvanceCounterRequest(
            counter_type=counter_type_of(counter_type),
            series=series,
            advance_to=data.draw(
                st.one_of(st.integers(0, 10**6), st.integers(0, 2**63 - 1), st.just(2**63 - 1)),
                label="advance_to",
            ),
        )
        # A missing series needs a prefix and may choose its reset and suffix; one known to
        # exist may do without, and its periods take its reset's form.
        reset = self.reset_of(counter_type, series)
        with_prefix, prefix = data.draw(st.booleans(), label="prefix?"), data.draw(PREFIXES)
        if with_prefix or reset is None:
            request.prefix = prefix
        if data.draw(st.booleans(), label="suffix?"):
            request.suffix = data.draw(PREFIXES, label="suffix")
        # Every value is drawn whatever is stored, so that examples replay the same.
        drawn = data.draw(st.sampled_from(RESETS), label="reset")
        anyway = data.draw(st.booleans(), label="reset anyway")
        if reset is None or anyway:
            request.reset = cast(cpb.CounterReset, drawn)
        if reset is None:
            reset = drawn or cpb.COUNTER_RESET_NEVER
            self.pending[(counter_type, series)] = reset  # for later items of a batch
        request.period = period_in(reset, data.draw(DAYS, label="day"), FISCAL_START)
        if data.draw(st.booleans(), label="padding?"):
            request.padding = data.draw(st.integers(1, 12), label="padding")
        if data.draw(st.integers(0, 9), label="validate only?") == 0:
            request.validate_only = True
        return request

    def _advance_counter(self, data: st.DataObject) -> cpb.AdvanceCounterRequest:
        request = self.advance_counter_request(data)
        self.pending.clear()
        if data.draw(st.integers(0, 4), label="expected value?") == 0:
            current = self.stored(request.counter_type, request.series, request.period)
            request.expected_current_value = 0 if current is None else current.current_value
        return request

    def _batch(self, data: st.DataObject) -> cpb.BatchAdvanceCountersRequest:
        size = data.draw(st.one_of(st.integers(1, 5), st.just(50)), label="batch size")
        request = cpb.BatchAdvanceCountersRequest(
            counters=[self.advance_counter_request(data) for _ in range(size)],
            validate_only=data.draw(st.integers(0, 9), label="validate all?") == 0,
        )
        self.pending.clear()
        return request

    def _get_counter(self, data: st.DataObject) -> cpb.GetCounterRequest:
        counter = self.counter(data)
        period = counter.period if data.draw(st.booleans(), label="period?") else ""
        return cpb.GetCounterRequest(
            counter_type=counter.counter_type, series=counter.series, period=period
        )

    def _list_counters(self, data: st.DataObject) -> cpb.ListCountersRequest:
        counter = self.counter(data)
        request = cpb.ListCountersRequest(
            page_size=data.draw(st.one_of(st.integers(0, 3), st.integers(0, 1000)))
        )
        if data.draw(st.booleans(), label="filter by type"):
            request.counter_type = counter.counter_type
        if data.draw(st.booleans(), label="filter by series"):
            request.series = counter.series
        if data.draw(st.booleans(), label="second page"):
            first_request = cpb.ListCountersRequest()
            first_request.CopyFrom(request)
            first_request.page_size = 1
            first = self.counters.ListCounters(first_request, metadata=self.metadata)
            request.page_token = first.next_page_token
        return request

    def _issue(self, data: st.DataObject) -> cpb.IssueNumbersRequest:
        counter = self.counter(data, value=data.draw(st.integers(0, 10**12), label="value"))
        request = cpb.IssueNumbersRequest(
            counter_type=counter.counter_type,
            series=counter.series,
            count=data.draw(st.integers(0, 1000)),
        )
        if data.draw(st.booleans(), label="dated?"):
            request.document_date = data.draw(DAYS, label="document date").isoformat()
        return request

    def _void(self, data: st.DataObject) -> cpb.VoidNumbersRequest:
        counter = self.counter(data, value=data.draw(st.integers(0, 10**12), label="value"))
        count = data.draw(st.integers(1, 20), label="issued")
        # Offsets into what is issued, drawn whatever the server answers (examples replay).
        low, high = sorted(
            min(data.draw(st.integers(0, 19), label="offset"), count - 1) for _ in range(2)
        )
        reason = data.draw(st.text(PRINTABLE, min_size=1, max_size=499), label="reason")
        issued = self.counters.IssueNumbers(
            cpb.IssueNumbersRequest(
                counter_type=counter.counter_type, series=counter.series, count=count,
                document_date=day_in(counter.period),
            ),
            metadata=self.metadata,
        )  # fmt: skip
        return cpb.VoidNumbersRequest(
            counter_type=counter.counter_type,
            series=counter.series,
            period=issued.counter.period,
            first_value=issued.first_value + low,
            last_value=issued.first_value + high,
            reason=reason + "x",
        )

    def _list_events(self, data: st.DataObject) -> cpb.ListCounterEventsRequest:
        counter = self.counter(data)
        request = cpb.ListCounterEventsRequest(
            page_size=data.draw(st.one_of(st.integers(0, 3), st.integers(0, 1000)))
        )
        if data.draw(st.booleans(), label="filter by type"):
            request.counter_type = counter.counter_type
        if data.draw(st.booleans(), label="filter by series"):
            request.series = counter.series
        if data.draw(st.booleans(), label="filter by period"):
            request.period = counter.period
        if data.draw(st.booleans(), label="second page"):
            first_request = cpb.ListCounterEventsRequest()
            first_request.CopyFrom(request)
            first_request.page_size = 1
            first = self.counters.ListCounterEvents(first_request, metadata=self.metadata)
            request.page_token = first.next_page_token
        return request

    def _update_counter(self, data: st.DataObject) -> cpb.UpdateCounterRequest:
        # A fresh series has issued nothing, so its reset may change too.
        fresh = data.draw(st.booleans(), label="fresh series")
        counter = self.counter(data, series=f"fz-{uuid4().hex[:8]}" if fresh else None)
        new_reset = data.draw(st.sampled_from(RESETS[1:]), label="reset")
        wanted = cpb.Counter(
            counter_type=counter.counter_type,
            series=counter.series,
            prefix=data.draw(PREFIXES, label="prefix"),
            suffix=data.draw(PREFIXES, label="suffix"),
            padding=data.draw(st.integers(1, 12), label="padding"),
            reset=cast(cpb.CounterReset, new_reset if fresh else counter.reset),
        )
        paths = data.draw(
            st.lists(st.sampled_from(["prefix", "suffix", "padding", "reset"]), max_size=4),
            label="mask",
        )
        request = cpb.UpdateCounterRequest(counter=wanted)
        if paths:
            request.update_mask.CopyFrom(FieldMask(paths=paths))
        return request

    def _create(self, data: st.DataObject) -> apb.CreateAdvanceRequest:
        if data.draw(st.booleans(), label="AR advance counter"):
            request = cpb.AdvanceCounterRequest(
                counter_type=cpb.COUNTER_TYPE_AR_ADVANCE,
                advance_to=data.draw(st.integers(0, 10**6)),
                prefix="ADV-",
            )
            self.counters.AdvanceCounter(request, metadata=self.metadata)
        body = advance_body(data, data.draw(st.sampled_from(["", "DRAFT", "POSTED"])))
        if data.draw(st.booleans(), label="own number"):
            body["advanceNumber"] = f"OWN-{uuid4().hex}"
        return apb.CreateAdvanceRequest(
            advance=advance_message(body),
            validate_only=data.draw(st.integers(0, 9), label="validate only?") == 0,
        )

    def _batch_create(self, data: st.DataObject) -> apb.BatchCreateAdvancesRequest:
        size = data.draw(st.one_of(st.integers(1, 4), st.just(100)), label="batch size")
        return apb.BatchCreateAdvancesRequest(
            requests=[self._create(data) for _ in range(size)],
            validate_only=data.draw(st.integers(0, 9), label="validate all?") == 0,
        )

    def _get_advance(self, data: st.DataObject) -> apb.GetAdvanceRequest:
        state = data.draw(st.sampled_from(["DRAFT", "POSTED", "APPLIED"]))
        made = self.applied(data, 1) if state == "APPLIED" else self.advance(data, state)
        if made.advance_number and data.draw(st.booleans(), label="by number"):
            return apb.GetAdvanceRequest(advance_number=made.advance_number)
        return apb.GetAdvanceRequest(key=made.key)

    def _list_advances(self, data: st.DataObject) -> apb.ListAdvancesRequest:
        made = self.advance(data, data.draw(st.sampled_from(["DRAFT", "POSTED"])))
        request = apb.ListAdvancesRequest(
            page_size=data.draw(st.one_of(st.integers(0, 3), st.integers(0, 1000))),
            view=cast(apb.AdvanceView, data.draw(st.sampled_from(apb.AdvanceView.values()))),
        )
        if data.draw(st.booleans(), label="by customer"):
            request.customer_id = made.customer.id
        if data.draw(st.booleans(), label="by state"):
            request.state = made.state
        if data.draw(st.booleans(), label="by number"):
            request.advance_number = made.advance_number
        if data.draw(st.booleans(), label="by reference"):
            request.reference_number = made.reference_number
        paid = date.fromisoformat(made.payment_information.payment_date)
        if data.draw(st.booleans(), label="paid from"):
            request.payment_date_from = str(paid - timedelta(days=data.draw(st.integers(0, 9))))
        if data.draw(st.booleans(), label="paid to"):
            request.payment_date_to = str(paid + timedelta(days=data.draw(st.integers(0, 9))))
        if data.draw(st.booleans(), label="second page"):
            second = advance_body(
                data, apb.AdvanceState.Name(made.state).removeprefix("ADVANCE_STATE_")
            )
            second["customer"]["id"] = made.customer.id
            self.client.create(second)
            first = apb.ListAdvancesRequest()
            first.CopyFrom(request)
            first.page_size = 1
            request.page_token = self.client.ListAdvances(first).next_page_token
        return request

    def _update(self, data: st.DataObject) -> apb.UpdateAdvanceRequest:
        made = self.advance(data, data.draw(st.sampled_from(["DRAFT", "POSTED"])))
        if data.draw(st.booleans(), label="round trip"):
            # What was read, changed and sent back whole: with "*", or with no mask.
            advance = apb.Advance()
            advance.CopyFrom(made)
            advance.description = data.draw(FREE_TEXT)
            mask = data.draw(st.sampled_from([None, FieldMask(paths=["*"])]))
            return apb.UpdateAdvanceRequest(advance=advance, update_mask=mask)
        body = advance_body(data)  # new values to take some of
        chosen = data.draw(
            st.lists(st.sampled_from(UPDATE_PATHS), min_size=1, max_size=4, unique=True),
            label="mask",
        )
        body.setdefault("customer", {}).setdefault("name", "a name")
        body.setdefault("referenceNumber", "REF-1")
        body.setdefault("description", "changed")
        body.setdefault("attachment", {"id": "att-1"})
        body.setdefault("glAccount", {"id": "1100"})
        body["paymentInformation"].setdefault("financialEntity", {"id": "WF"})
        body["paymentInformation"].setdefault("currency", {"txnCurrency": "USD"})
        body["paymentInformation"]["currency"].setdefault("exchangeRate", "1")
        advance = advance_message(body)
        advance.key = made.key
        if data.draw(st.booleans(), label="etag"):
            advance.etag = made.etag
        if data.draw(st.booleans(), label="own number"):
            advance.advance_number = made.advance_number
        with_mask = data.draw(st.booleans(), label="with mask")
        if not with_mask:  # every populated writable field is written: send only the chosen
            kept = apb.Advance(key=advance.key, etag=advance.etag)
            FieldMask(paths=chosen).MergeMessage(advance, kept)
            advance = kept
        return apb.UpdateAdvanceRequest(
            advance=advance, update_mask=FieldMask(paths=chosen) if with_mask else None
        )

    def _delete(self, data: st.DataObject) -> apb.DeleteAdvanceRequest:
        made = self.advance(data, data.draw(st.sampled_from(["DRAFT", "POSTED"])))
        etag = made.etag if data.draw(st.booleans(), label="etag") else ""
        return apb.DeleteAdvanceRequest(key=made.key, etag=etag)

    def _submit(self, data: st.DataObject) -> apb.SubmitAdvanceRequest:
        return apb.SubmitAdvanceRequest(key=self.advance(data, "DRAFT").key)

    def _reverse(self, data: st.DataObject) -> apb.ReverseAdvanceRequest:
        made = self.advance(data)
        if data.draw(st.booleans(), label="applied and unapplied first"):
            made = self.client.apply(
                made.key, "0.01", "INV-9", made.payment_information.receipt_date
            )
            self.client.UnapplyAdvance(
                apb.UnapplyAdvanceRequest(key=made.key, invoice_number="INV-9")
            )
        return apb.ReverseAdvanceRequest(
            key=made.key,
            reversed_date=_day_after(data, made.payment_information.receipt_date),
            memo=data.draw(FREE_TEXT),
        )

    def _apply(self, data: st.DataObject) -> apb.ApplyAdvanceRequest:
        made = self.applied(data, data.draw(st.integers(0, 2), label="applied before"), leave=1)
        due = cents_of(made.payment_information.total_txn_amount_due)
        return apb.ApplyAdvanceRequest(
            key=made.key,
            invoice_number=data.draw(IDENTIFIERS, label="invoice"),
            amount=amount_text(data, part_of(data, due)),
            applied_date=_day_after(data, made.payment_information.receipt_date),
        )

    def _unapply(self, data: st.DataObject) -> apb.UnapplyAdvanceRequest:
        made = self.applied(data, data.draw(st.integers(1, 3), label="applications"))
        if data.draw(st.booleans(), label="one unapplied") and len(made.applications) > 1:
            first = made.applications[0]
            made = self.client.UnapplyAdvance(
                apb.UnapplyAdvanceRequest(key=made.key, application_key=first.key)
            )
        application = pick(data, list(made.applications), "which")
        how = data.draw(st.sampled_from(["invoice", "key", "both"]), label="by")
        return apb.UnapplyAdvanceRequest(
            key=made.key,
            invoice_number=application.invoice_number if how != "key" else "",
            application_key=application.key if how != "invoice" else "",
        )

    BUILDERS: ClassVar[dict[str, Callable[["World", st.DataObject], Message]]] = {
        "AdvanceCounter": _advance_counter,
        "BatchAdvanceCounters": _batch,
        "GetCounter": _get_counter,
        "ListCounters": _list_counters,
        "IssueNumbers": _issue,
        "UpdateCounter": _update_counter,
        "ListCounterEvents": _list_events,
        "VoidNumbers": _void,
        "CreateAdvance": _create,
        "BatchCreateAdvances": _batch_create,
        "GetAdvance": _get_advance,
        "ListAdvances": _list_advances,
        "UpdateAdvance": _update,
        "DeleteAdvance": _delete,
        "SubmitAdvance": _submit,
        "ReverseAdvance": _reverse,
        "ApplyAdvance": _apply,
        "UnapplyAdvance": _unapply,
    }
