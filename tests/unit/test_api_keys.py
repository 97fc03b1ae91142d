"""service/auth/keys.py to the letter: hints, the principal a key stands for, and the
exact error (reason, message, metadata, domain) each refusal gives. Pure: no I/O."""

from datetime import UTC, datetime

import pytest

from service.auth import keys
from service.errors import FieldViolation, InvalidArgument, ServiceError, Unauthenticated

NOW = datetime(2026, 11, 21, tzinfo=UTC)
MALFORMED: tuple[str, str, dict[str, str], str | None] = (
    "API_KEY_MALFORMED",
    "the authorization metadata must be 'Bearer ark_live_ent_…' or 'Bearer ark_test_ent_…'",
    {},
    "arcus.auth.v1",
)


def seen(error: ServiceError) -> tuple[str, str, dict[str, str], str | None]:
    return (error.reason, error.message, error.metadata, error.domain)


def test_an_unknown_mode_is_named():
    with pytest.raises(ValueError, match=r"^unknown mode 'prod'$"):
        keys.generate_key("prod")


def test_a_key_hint_keeps_the_first_17_and_the_last_4_characters():
    key = "ark_live_ent_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    assert keys.key_hint(key) == "ark_live_ent_ABCD…2345"


def test_a_missing_authorization_is_unauthenticated_in_the_auth_domain():
    with pytest.raises(Unauthenticated) as caught:
        keys.parse_bearer([])
    assert seen(caught.value) == (
        "API_KEY_MISSING",
        "missing 'authorization: Bearer ark_live_ent_…' metadata",
        {},
        "arcus.auth.v1",
    )


@pytest.mark.parametrize(
    "value", ["Bearer", "Basic ark_live_ent_" + "a" * 32, "Bearer ark_live_ent_" + "a" * 33]
)
def test_a_malformed_authorization_says_what_is_expected(value):
    with pytest.raises(Unauthenticated) as caught:
        keys.parse_bearer([value])
    assert seen(caught.value) == MALFORMED


def test_only_the_first_authorization_value_is_read():
    key = "ark_live_ent_" + "b" * 32
    assert keys.parse_bearer([f"Bearer {key}", "garbage"]) == key
    with pytest.raises(Unauthenticated):
        keys.parse_bearer(["garbage", f"Bearer {key}"])


def test_an_unknown_key_and_a_revoked_key_are_told_apart():
    with pytest.raises(Unauthenticated) as unknown:
        keys.principal_for(None)
    assert seen(unknown.value) == ("API_KEY_INVALID", "unknown API key", {}, "arcus.auth.v1")
    revoked = keys.ApiKeyRecord(3, "h", "acme", "test", ("counters:read",), NOW, NOW)
    with pytest.raises(Unauthenticated) as caught:
        keys.principal_for(revoked)
    assert seen(caught.value) == (
        "API_KEY_REVOKED",
        "the API key was revoked",
        {},
        "arcus.auth.v1",
    )


def test_the_principal_carries_the_key_its_tenant_and_its_scopes():
    record = keys.ApiKeyRecord(
        9, "h", "globex", "test", ("counters:read", "advances:write"), NOW, None
    )
    assert keys.principal_for(record) == keys.Principal(
        9, keys.Tenant("globex", "test"), frozenset({"counters:read", "advances:write"})
    )


def test_a_missing_scope_is_named_in_the_error():
    principal = keys.Principal(1, keys.Tenant("acme", "live"), frozenset({"counters:read"}))
    with pytest.raises(ServiceError) as caught:
        principal.require("advances:write")
    assert type(caught.value).__name__ == "PermissionDenied"
    assert seen(caught.value) == (
        "SCOPE_MISSING",
        "the API key lacks the scope 'advances:write' this method requires",
        {"required_scope": "advances:write"},
        "arcus.auth.v1",
    )


@pytest.mark.parametrize("entity", ["a", "A9", "acme-1.eu_west", "x" * 64])
def test_entity_ids_that_are_taken(entity):
    keys.validate_new_key(entity, ["s"], frozenset({"s"}))


@pytest.mark.parametrize("entity", ["", "-acme", "_a", ".a", "a b", "x" * 65, "acmé"])
def test_entity_ids_that_are_refused_and_why(entity):
    with pytest.raises(InvalidArgument) as caught:
        keys.validate_new_key(entity, ["s"], frozenset({"s"}))
    assert caught.value.violations == [
        FieldViolation(
            "entity",
            "must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit",
            "ENTITY_ID_INVALID",
        )
    ]


def test_a_new_key_needs_a_scope():
    with pytest.raises(InvalidArgument) as caught:
        keys.validate_new_key("acme", [], frozenset({"counters:read"}))
    assert caught.value.violations == [
        FieldViolation("scope", "at least one scope is required", "SCOPE_REQUIRED")
    ]


def test_each_unknown_scope_is_reported_with_the_known_ones_in_order():
    known = frozenset({"counters:read", "advances:write", "migration:write"})
    with pytest.raises(InvalidArgument) as caught:
        keys.validate_new_key("acme", ["counters:read", "x", "y"], known)
    listed = "advances:write, counters:read, migration:write"
    assert caught.value.violations == [
        FieldViolation("scope", f"unknown scope 'x'; known: {listed}", "SCOPE_UNKNOWN"),
        FieldViolation("scope", f"unknown scope 'y'; known: {listed}", "SCOPE_UNKNOWN"),
    ]
