"""The largest requests the service accepts, and the largest it must refuse, of each kind."""

from arcus.counters.v1 import counters_pb2 as cpb
from arcus.receivables.v1 import advances_pb2 as apb
from google.protobuf.field_mask_pb2 import FieldMask

from service.advances import domain, messages
from service.server import MAX_MESSAGE_BYTES
from tests.support import counter_type_of

WIDE = "\U0001d518"  # four bytes in UTF-8: the most bytes a character can cost


def wide(characters: int) -> str:
    return WIDE * characters


def largest_line(characters: int) -> apb.AdvanceLine:
    """A line with every reference and its memo `characters` long (wide ones)."""
    short = min(characters, 100)
    return apb.AdvanceLine(
        gl_account=apb.LineGlAccount(id=wide(short), name=wide(characters)),
        account_label=apb.AccountLabel(id=wide(short), name=wide(characters)),
        txn_amount="99999999999.99",
        memo=wide(characters),
        dimensions=apb.Dimensions(
            **{
                name: apb.Dimension(id=wide(short), name=wide(characters))
                for name in domain.DIMENSIONS
            }
        ),
    )


def largest_advance() -> apb.Advance:
    """An advance of domain.MAX_ITEMS lines, its header fields at their longest, as large
    as messages.MAX_ADVANCE_BYTES allows: its lines share the bytes the header leaves."""
    header = apb.Advance(
        advance_number="",
        customer=apb.Customer(id=wide(100), name=wide(200)),
        reference_number=wide(100),
        description=wide(1000),
        payment_information=apb.PaymentInformation(
            payment_date="2024-06-13",
            receipt_date="2024-06-13",
            payment_method=apb.PAYMENT_METHOD_CASH,
            financial_entity=apb.FinancialEntity(id=wide(100)),
            currency=apb.Currency(
                txn_currency="EUR",
                exchange_rate="0.1000000001",  # 10 decimals, 10 significant digits
                exchange_rate_date="2024-06-13",
                exchange_rate_type_id=wide(100),
            ),
        ),
        advance_summary=apb.AdvanceSummary(id=wide(100)),
        gl_account=apb.AdvanceGlAccount(id=wide(100), undeposited_gl_account_number=wide(100)),
        attachment=apb.Attachment(id=wide(100)),
    )
    for characters in range(40, 0, -1):
        advance = apb.Advance()
        advance.CopyFrom(header)
        line = largest_line(characters)
        advance.items.extend([line] * domain.MAX_ITEMS)
        if advance.ByteSize() <= messages.MAX_ADVANCE_BYTES:
            return advance
    raise AssertionError("no advance of MAX_ITEMS lines fits MAX_ADVANCE_BYTES")


def invalid_line() -> apb.AdvanceLine:
    """A line with a violation in every field it has."""
    return apb.AdvanceLine(
        gl_account=apb.LineGlAccount(id="\x00" * 101, name="\x00"),
        account_label=apb.AccountLabel(id="\x00", name="\x00"),
        txn_amount="1e5",
        memo="\x00",
        dimensions=apb.Dimensions(location=apb.Dimension(id="\x00", name="\x00")),
    )


def most_violations() -> apb.Advance:
    """MAX_ITEMS lines, each as wrong as a line can be: the most violations accepted for
    validation."""
    advance = apb.Advance(items=[invalid_line()] * domain.MAX_ITEMS)
    advance.payment_information.payment_date = "2024-02-30"
    return advance


def _filling(template: bytes) -> int:
    """How many copies of an item serialized as `template` fill a request just under the
    server's message limit."""
    return (MAX_MESSAGE_BYTES - 1024) // (len(template) + 2)


def flood_of_items() -> apb.Advance:
    """As many (invalid) items as the message limit holds: far past MAX_ITEMS."""
    item = apb.AdvanceLine(txn_amount="x")
    return apb.Advance(items=[item] * _filling(item.SerializeToString()))


def flood_of_mask_paths() -> FieldMask:
    return FieldMask(paths=["x"] * _filling(b"x"))


def flood_of_counters() -> cpb.BatchAdvanceCountersRequest:
    item = cpb.AdvanceCounterRequest(counter_type=cpb.COUNTER_TYPE_INVOICE, advance_to=1)
    count = _filling(item.SerializeToString())
    return cpb.BatchAdvanceCountersRequest(counters=[item] * count)


def largest_batch() -> cpb.BatchAdvanceCountersRequest:
    return cpb.BatchAdvanceCountersRequest(
        counters=[
            cpb.AdvanceCounterRequest(
                counter_type=counter_type_of(1 + i % 22),
                advance_to=2**62 + i,
                prefix="P" * 20,
                padding=12,
            )
            for i in range(50)
        ]
    )


def _valid_line(characters: int) -> apb.AdvanceLine:
    return apb.AdvanceLine(
        gl_account=apb.LineGlAccount(id="2200"),
        txn_amount="1",
        memo=wide(characters),
        dimensions=apb.Dimensions(location=apb.Dimension(id="CA")),
    )


def largest_advance_batch() -> apb.BatchCreateAdvancesRequest:
    """The batch whose answer is largest: messages.MAX_BATCH advances holding
    messages.MAX_BATCH_ITEMS lines in all (the answer adds the most to each line), their
    memos as long as messages.MAX_BATCH_BYTES allows."""
    per_advance = messages.MAX_BATCH_ITEMS // messages.MAX_BATCH
    for characters in range(200, 0, -1):
        advance = apb.Advance(
            customer=apb.Customer(id="C-1"),
            payment_information=apb.PaymentInformation(
                payment_date="2024-06-13",
                receipt_date="2024-06-13",
                payment_method=apb.PAYMENT_METHOD_CASH,
            ),
            items=[_valid_line(characters)] * per_advance,
        )
        batch = apb.BatchCreateAdvancesRequest(
            requests=[apb.CreateAdvanceRequest(advance=advance)] * messages.MAX_BATCH
        )
        if batch.ByteSize() <= messages.MAX_BATCH_BYTES:
            return batch
    raise AssertionError("no batch of MAX_BATCH_ITEMS lines fits MAX_BATCH_BYTES")


def flood_of_advances() -> apb.BatchCreateAdvancesRequest:
    """100 advances as large as the message limit holds: far past MAX_BATCH_BYTES."""
    advance = apb.Advance(description="x" * ((MAX_MESSAGE_BYTES - 4096) // messages.MAX_BATCH))
    return apb.BatchCreateAdvancesRequest(
        requests=[apb.CreateAdvanceRequest(advance=advance)] * messages.MAX_BATCH
    )


def batch_of_too_many_items() -> apb.BatchCreateAdvancesRequest:
    """One line past MAX_BATCH_ITEMS, each tiny: the batch is small in bytes."""
    lines = [apb.AdvanceLine(txn_amount="1")] * (messages.MAX_BATCH_ITEMS // 2 + 1)
    advance = apb.Advance(items=lines)
    return apb.BatchCreateAdvancesRequest(requests=[apb.CreateAdvanceRequest(advance=advance)] * 2)
