"""The fast paths of the conversions every advance takes agree with the general ones."""

from datetime import UTC, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from arcus.receivables.v1 import advances_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from service.advances import messages
from service.advances.domain import AdvanceFields, Ref
from service.db.ids import LARGEST, SMALLEST, new_ids
from service.errors import Violations
from service.rpc.convert import timestamp
from service.values import MAX_CENTS, check_identifier, convert, format_cents

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=11))]
)


@given(st.datetimes(timezones=ZONES) | st.datetimes())
def test_timestamp_is_what_protobuf_makes(value):
    expected = Timestamp()
    expected.FromDatetime(value)  # naive: taken as UTC, as timestamp() does
    assert timestamp(value) == expected


@given(
    st.integers(-MAX_CENTS, MAX_CENTS),
    st.sampled_from([Decimal(1), Decimal("1.0"), Decimal("1.000000")])
    | st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(1_000_000), places=6),
)
def test_convert_is_the_rounded_product(cents, rate):
    exact = (Decimal(cents) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert convert(cents, rate) == int(exact)


@given(st.integers(-MAX_CENTS, MAX_CENTS))
def test_format_cents_is_the_decimal_amount(cents):
    assert format_cents(cents) == f"{Decimal(cents) / 100:.2f}"


def test_an_empty_field_parses_to_the_default_parsing_skips_it_for():
    """parse_fields leaves a field the caller left empty at AdvanceFields' default."""
    empty, defaults = pb.Advance(), AdvanceFields()
    for path, writable in messages.WRITABLE.items():
        violations = Violations()
        parsed = writable.parse(writable.read(empty), violations, path)
        assert parsed == getattr(defaults, writable.attribute), path
        assert not violations.items, path
    assert messages.parse_fields(empty, list(messages.WRITABLE), Violations()) == defaults


TEXT = st.text(st.characters(codec="utf-8"), max_size=210) | st.sampled_from(["", "CA", "\n"])


@given(TEXT, TEXT)
def test_a_reference_checked_at_once_is_what_checking_each_field_gives(ref_id, name):
    fast, each = Violations(), Violations()
    ref = messages._ref(pb.Dimension(id=ref_id, name=name), fast, "p")
    expected = Ref(
        check_identifier(ref_id, each, "p.id"),
        check_identifier(name, each, "p.name", messages.NAME_LENGTH),
    )
    assert ref == expected
    assert fast.items == each.items


def test_new_keys_are_distinct_and_in_range():
    keys = new_ids(10_000)
    assert len(set(keys)) == 10_000
    assert all(SMALLEST <= key <= LARGEST for key in keys)
    assert new_ids(0) == []
