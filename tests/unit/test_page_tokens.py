"""service/pagination.py to the letter: page sizes, the tokens' shape, and the exact error
a bad token or page size gives. Pure: no I/O."""

import base64
import json

import pytest

from service.auth.keys import Tenant
from service.errors import FieldViolation, InvalidArgument
from service.pagination import MAX_TOKEN_LENGTH, PageTokens, invalid_page_token, page_size

ACME = Tenant("acme", "live")
INVALID_TOKEN = FieldViolation(
    "page_token", "is not a token from a previous response", "PAGE_TOKEN_INVALID"
)


def test_a_negative_page_size_is_named_in_the_error():
    with pytest.raises(InvalidArgument) as caught:
        page_size(-5)
    assert caught.value.violations == [
        FieldViolation("page_size", "must not be negative", "PAGE_SIZE_NEGATIVE")
    ]


def test_page_sizes_up_to_the_maximum_are_kept():
    assert [page_size(n) for n in (1, 999, 1000, 1001)] == [1, 999, 1000, 1000]


def test_an_invalid_page_token_error_names_the_field():
    error = invalid_page_token()
    assert (error.reason, error.violations, error.message) == (
        "PAGE_TOKEN_INVALID",
        [INVALID_TOKEN],
        "page_token: is not a token from a previous response",
    )


def test_every_rejected_token_gives_the_same_error():
    tokens = PageTokens(b"secret")
    for bad in ["x", "a.b", "x" * (MAX_TOKEN_LENGTH + 1)]:
        with pytest.raises(InvalidArgument) as caught:
            tokens.decode("counters", ACME, bad, str)
        assert caught.value.violations == [INVALID_TOKEN]


@pytest.mark.parametrize("length", range(0, 24))
def test_tokens_of_every_length_round_trip_unpadded_and_url_safe(length):
    tokens = PageTokens(b"secret")
    position = ["x" * length, length]
    token = tokens.encode("advances", ACME, position)
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    assert tokens.decode("advances", ACME, token, list) == position


def test_a_token_with_a_dot_put_into_its_body_is_refused():
    tokens = PageTokens(b"secret")
    token = tokens.encode("advances", ACME, ["2024-06-13", 123])
    body, _, signature = token.partition(".")
    assert len(body) % 4 == 0  # so that it needs no padding, with a dot in it or not
    # Still the same body once the dot is dropped, and still its signature after the
    # last dot: but a token the server did not make.
    changed = f"{body[:8]}.{body[8:]}.{signature}"
    with pytest.raises(InvalidArgument):
        tokens.decode("advances", ACME, changed, list)


def test_a_token_carries_its_position_as_compact_json():
    token = PageTokens(b"secret").encode("advances", ACME, {"d": "2024-06-13", "k": [1, 2]})
    body = token.partition(".")[0]
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert decoded == b'{"d":"2024-06-13","k":[1,2]}'
    assert json.loads(decoded) == {"d": "2024-06-13", "k": [1, 2]}


def test_made_tokens_up_to_512_characters_are_accepted_and_longer_ones_refused():
    tokens = PageTokens(b"secret")
    made = [tokens.encode("counters", ACME, "x" * n) for n in range(350, 400)]
    longest_taken = max((t for t in made if len(t) <= MAX_TOKEN_LENGTH), key=len)
    shortest_refused = min((t for t in made if len(t) > MAX_TOKEN_LENGTH), key=len)
    # A body of length 1 mod 4 does not exist: no made token is exactly 512 long.
    assert (len(longest_taken), len(shortest_refused)) == (511, 513)
    assert tokens.decode("counters", ACME, longest_taken, str).startswith("x")
    with pytest.raises(InvalidArgument):
        tokens.decode("counters", ACME, shortest_refused, str)


@pytest.mark.parametrize(
    "change",
    [
        lambda token: "!!!!" + token,
        lambda token: token[:4] + " " + token[4:],
        lambda token: token[:4] + "\n" + token[4:],
        lambda token: token + "====",
        lambda token: token.replace("-", "+").replace("_", "/") + "+/",
    ],
)
def test_a_token_changed_by_characters_outside_its_alphabet_is_refused(change):
    tokens, acme = PageTokens(b"secret"), Tenant("acme", "live")
    token = tokens.encode("advances", acme, [123456789, "", "", 7])
    with pytest.raises(InvalidArgument):
        tokens.decode("advances", acme, change(token), list)


def test_a_sealed_position_opens_to_itself_and_shows_nothing_of_it():
    tokens = PageTokens(b"k" * 32)
    values = [0, 1, 2, 12345, 2**32, 2**53 + 7, 2**63 - 1, 2**64 - 1]
    sealed = [tokens.seal(v) for v in values]
    assert [tokens.unseal(s) for s in sealed] == values
    assert all(0 <= s < 2**64 for s in sealed)
    assert sealed[1] - sealed[0] != 1 and sealed[2] - sealed[1] != 1  # neighbours scatter
    assert PageTokens(b"j" * 32).seal(12345) != tokens.seal(12345)  # keyed


@pytest.mark.parametrize("sealed", [-1, 2**64])
def test_a_number_no_seal_made_is_an_invalid_token(sealed):
    with pytest.raises(InvalidArgument):
        PageTokens(b"k" * 32).unseal(sealed)


def test_the_seal_is_the_one_tokens_already_hold():
    """A fixed vector: tokens handed out before a restart open after it."""
    tokens = PageTokens(b"k" * 32)
    assert tokens.seal(12345) == 6532847031163546488
    assert tokens.seal(tokens.unseal(0)) == 0  # 0 is a sealed value like any other
