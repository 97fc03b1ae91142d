"""The fast paths of two conversions every advance takes agree with the general ones."""

from datetime import UTC, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from service.rpc.convert import timestamp
from service.values import MAX_CENTS, convert

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
