"""Domain rules, keys and page tokens: pure functions, no I/O."""

import base64
from datetime import UTC, datetime

import pytest

from service.auth import keys
from service.auth.keys import Tenant
from service.counters import domain
from service.errors import (
    InvalidArgument,
    OutOfRange,
    PermissionDenied,
    Unauthenticated,
    Violations,
)
from service.pagination import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PageTokens,
    page_size,
)

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def violations_of(check, *args) -> dict[str, str]:
    violations = Violations()
    check(*args, violations)
    return {v.field: v.reason for v in violations.items}


@pytest.mark.parametrize(
    ("prefix", "padding", "value", "expected"),
    [
        ("INV-", 7, 342666, "INV-0342666"),
        ("", 1, 5, "5"),
        ("PO", 3, 123456, "PO123456"),
        ("X", 12, 0, "X000000000000"),
    ],
)
def test_format_number(prefix, padding, value, expected):
    assert domain.format_number(prefix, padding, value) == expected


def test_next_number_and_exhaustion():
    counter = domain.Counter("invoice", "INV-", 7, 342665, NOW, NOW)
    assert counter.next_number == "INV-0342666"
    assert domain.Counter("invoice", "INV-", 7, domain.MAX_VALUE, NOW, NOW).next_number == ""


def test_issue_result_lists_its_numbers():
    result = domain.IssueResult(domain.Counter("po", "PO-", 2, 12, NOW, NOW), 10, 12)
    assert result.numbers == ["PO-10", "PO-11", "PO-12"]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (domain.AdvanceRequest("invoice", 0, "", 1), {}),
        (domain.AdvanceRequest("invoice", 10, "A" * 20, 12), {}),
        (domain.AdvanceRequest("invoice", -1), {"advance_to": "ADVANCE_TO_NEGATIVE"}),
        (domain.AdvanceRequest("invoice", 1, "A" * 21), {"prefix": "PREFIX_TOO_LONG"}),
        (domain.AdvanceRequest("invoice", 1, "A\u0007"), {"prefix": "PREFIX_NOT_PRINTABLE"}),
        (domain.AdvanceRequest("invoice", 1, "A\u00a0B"), {"prefix": "PREFIX_NOT_PRINTABLE"}),
        (domain.AdvanceRequest("invoice", 1, "Ärger-€"), {}),
        (domain.AdvanceRequest("invoice", 1, None, 0), {"padding": "PADDING_OUT_OF_RANGE"}),
        (domain.AdvanceRequest("invoice", 1, None, 13), {"padding": "PADDING_OUT_OF_RANGE"}),
    ],
)
def test_check_advance(request_, expected):
    violations = Violations()
    domain.check_advance(request_, violations)
    assert {v.field: v.reason for v in violations.items} == expected


def test_new_counter_needs_a_prefix_and_defaults_padding_to_7():
    new = domain.new_series
    assert new(domain.AdvanceRequest("po", 1, "PO-"), NOW).format == domain.Format("PO-", 7)
    assert new(domain.AdvanceRequest("po", 1, "", 3), NOW).format == domain.Format("", 3)
    with pytest.raises(InvalidArgument) as caught:
        domain.new_series(domain.AdvanceRequest("po", 1), NOW)
    nested = caught.value.under("counters[4].")
    assert nested.violations[0].field == "counters[4].prefix"
    assert nested.reason == "PREFIX_REQUIRED"
    assert "counters[4].prefix: is required" in nested.message


@pytest.mark.parametrize(
    ("count", "normalised", "ok"),
    [(0, 1, True), (1, 1, True), (1000, 1000, True), (1001, 1001, False), (-3, -3, False)],
)
def test_issue_count(count, normalised, ok):
    violations = Violations()
    assert domain.check_issue_count(count, violations) == normalised
    assert (not violations.items) == ok


@pytest.mark.parametrize(("size", "ok"), [(0, False), (1, True), (50, True), (51, False)])
def test_batch_size(size, ok):
    if ok:
        domain.check_batch_size(size)
    else:
        with pytest.raises(InvalidArgument):
            domain.check_batch_size(size)


def test_counter_types_rank_in_the_reference_order():
    ranked = sorted(("ar_advance", "account", "order", "po"), key=domain.type_rank)
    assert ranked == ["order", "po", "account", "ar_advance"]
    assert (domain.type_rank("order"), domain.type_rank("ar_advance")) == (1, 22)


def test_counter_exhausted_is_out_of_range():
    error = domain.counter_exhausted(domain.Counter("po", "", 1, domain.MAX_VALUE, NOW, NOW), 1)
    assert isinstance(error, OutOfRange) and error.reason == "COUNTER_EXHAUSTED"


def test_keys_have_the_documented_shape_and_are_hashed():
    live, test = keys.generate_key("live"), keys.generate_key("test")
    assert live.startswith("ark_live_ent_") and test.startswith("ark_test_ent_")
    assert len(live) == len("ark_live_ent_") + 32
    assert keys.generate_key("live") != live
    assert len(keys.hash_key(live)) == 64 and keys.hash_key(live) != keys.hash_key(test)
    hint = keys.key_hint(live)
    assert hint.startswith("ark_live_ent_") and hint.endswith(live[-4:]) and len(hint) < 30


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "API_KEY_MISSING"),
        (["Bearer"], "API_KEY_MALFORMED"),
        (["Token " + "ark_live_ent_" + "a" * 32], "API_KEY_MALFORMED"),
        (["Bearer ark_prod_ent_" + "a" * 32], "API_KEY_MALFORMED"),
        (["Bearer ark_live_ent_" + "a" * 31 + "-"], "API_KEY_MALFORMED"),
    ],
)
def test_parse_bearer_rejects(values, reason):
    with pytest.raises(Unauthenticated) as caught:
        keys.parse_bearer(values)
    assert caught.value.reason == reason


def test_parse_bearer_accepts():
    key = "ark_test_ent_" + "a1B2" * 8
    assert keys.parse_bearer([f"Bearer {key}"]) == key
    assert keys.parse_bearer([f"  bearer   {key} "]) == key


def test_principal_for_revoked_and_scopes():
    record = keys.ApiKeyRecord(1, "h", "acme", "live", ("counters:read",), NOW, None)
    principal = keys.principal_for(record)
    assert principal.tenant == keys.Tenant("acme", "live")
    principal.require("counters:read")
    with pytest.raises(PermissionDenied) as caught:
        principal.require("counters:write")
    assert caught.value.metadata == {"required_scope": "counters:write"}
    with pytest.raises(Unauthenticated):
        keys.principal_for(None)
    with pytest.raises(Unauthenticated):
        keys.principal_for(keys.ApiKeyRecord(1, "h", "acme", "live", (), NOW, NOW))


def test_validate_new_key():
    known = frozenset({"counters:read"})
    keys.validate_new_key("acme-1.eu_west", ["counters:read"], known)
    with pytest.raises(InvalidArgument) as caught:
        keys.validate_new_key("", ["nope"], known)
    assert [v.reason for v in caught.value.violations] == ["ENTITY_ID_INVALID", "SCOPE_UNKNOWN"]


def test_page_tokens_round_trip_and_reject_forgeries():
    tokens, acme = PageTokens(b"secret"), Tenant("acme", "live")
    token = tokens.encode("counters", acme, "invoice")
    assert tokens.decode("counters", acme, token, str) == "invoice"
    assert tokens.decode("counters", acme, "", str) is None
    body, _, signature = token.partition(".")
    tampered = base64.urlsafe_b64encode(b'"order"').decode().rstrip("=") + "." + signature
    for bad in [
        "x",
        "!!!",
        body,  # unsigned
        tampered,  # another position under the same signature
        tokens.encode("advances", acme, "invoice"),  # another listing
        tokens.encode("counters", Tenant("acme", "test"), "invoice"),  # another tenant
        tokens.encode("counters", Tenant("globex", "live"), "invoice"),
        PageTokens(b"another secret").encode("counters", acme, "invoice"),
        tokens.encode("counters", acme, 5),  # a position of the wrong type
    ]:
        with pytest.raises(InvalidArgument):
            tokens.decode("counters", acme, bad, str)


def test_page_size():
    assert page_size(0) == DEFAULT_PAGE_SIZE
    assert page_size(7) == 7
    assert page_size(10**6) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument):
        page_size(-1)


def test_key_cache_looks_a_key_up_once_per_ttl_and_never_remembers_unknown_keys():
    from service.auth.cache import KeyCache

    record = keys.ApiKeyRecord(
        7, "hint", "acme", "live", ("counters:read",), datetime.now(UTC), None
    )
    lookups: list[str] = []
    now = [0.0]

    def find(key_hash: str) -> keys.ApiKeyRecord | None:
        lookups.append(key_hash)
        return record if key_hash == "known" else None

    cache = KeyCache(find, ttl=5, monotonic=lambda: now[0])
    assert [cache.find("known") for _ in range(3)] == [record] * 3
    assert cache.find("unknown") is None and cache.find("unknown") is None
    now[0] = 5.0
    cache.find("known")
    assert lookups == ["known", "unknown", "unknown", "known"]
