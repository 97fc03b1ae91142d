"""service/idempotency/rules.py: what an idempotency key may be, what makes two requests
the same, and what a reused key says. Pure: no I/O."""

import hashlib

import pytest

from service.errors import FieldViolation, InvalidArgument
from service.idempotency import rules

HEADER = "idempotency-key"
LENGTH = FieldViolation(HEADER, "must be 1..255 characters", "IDEMPOTENCY_KEY_INVALID")
PRINTABLE = FieldViolation(
    HEADER,
    "must be printable ASCII, not starting or ending with a space",
    "IDEMPOTENCY_KEY_INVALID",
)
ONCE = FieldViolation(HEADER, "must be sent once", "IDEMPOTENCY_KEY_INVALID")


def violations_of(values: list[str]) -> list[FieldViolation]:
    with pytest.raises(InvalidArgument) as caught:
        rules.check_key(values)
    return caught.value.violations


def test_the_header_names():
    assert (rules.HEADER, rules.REPLAYED_HEADER) == ("idempotency-key", "idempotent-replayed")


def test_no_key_sent_is_none():
    assert rules.check_key([]) is None


@pytest.mark.parametrize("key", ["k", "order-7 retry 2", "~!@#$%^&*()", "a" * 255, "a b"])
def test_a_printable_ascii_key_of_1_to_255_characters_is_taken(key):
    assert rules.check_key([key]) == key


@pytest.mark.parametrize("key", ["", "a" * 256])
def test_an_empty_or_too_long_key_is_refused(key):
    assert violations_of([key]) == [LENGTH]


@pytest.mark.parametrize("key", ["é", "a\x01b", "tab\there", " lead", "trail ", "line\n"])
def test_a_key_not_printable_ascii_or_with_spaces_around_is_refused(key):
    assert violations_of([key]) == [PRINTABLE]


def test_a_key_sent_twice_is_refused_whatever_the_first_one_is():
    assert violations_of(["a", "a"]) == [ONCE]
    assert violations_of(["a", "b", "c"]) == [ONCE]
    assert violations_of(["", "b"]) == [LENGTH, ONCE]


def test_fingerprint_is_the_sha256_of_the_method_a_nul_and_the_request():
    expected = hashlib.sha256(b"/pkg.Svc/Call\0request").hexdigest()
    assert rules.fingerprint("/pkg.Svc/Call", b"request") == expected
    # The separator keeps the method and the request apart.
    assert rules.fingerprint("/a", b"bc") != rules.fingerprint("/ab", b"c")


def test_a_reused_key_is_named_in_the_error():
    error = rules.key_reused("order-7")
    assert (error.reason, error.message, error.metadata, error.domain) == (
        "IDEMPOTENCY_KEY_REUSED",
        "idempotency key 'order-7' was used with a different request in the last 24 hours",
        {"idempotency_key": "order-7"},
        None,
    )
