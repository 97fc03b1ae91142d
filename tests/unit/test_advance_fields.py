"""service/advances/domain.py, the field rules to the letter: every violation's path,
description and reason, the conditional rules, currencies and pricing. Pure: no I/O."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

from service.advances import domain
from service.advances.domain import AdvanceFields, LineFields, Ref
from service.entities.settings import EntitySettings
from service.errors import FieldViolation, Violations
from service.values import MAX_CENTS

RECEIVED = date(2024, 6, 13)
RATE_PATH = "advance.payment_information.currency.exchange_rate"


def line(cents: int | None = 1000, **changes) -> LineFields:
    made = LineFields(Ref("2200"), txn_amount=cents, dimensions={"location": Ref("CA")})
    return replace(made, **changes)


def complete(**changes) -> AdvanceFields:
    made = AdvanceFields(
        customer_id="C-00019",
        payment_date=RECEIVED,
        receipt_date=RECEIVED,
        payment_method="cash",
        items=(line(),),
    )
    return replace(made, **changes)


def checked(
    f: AdvanceFields, settings: EntitySettings | None = None, base_currency: str = ""
) -> list[FieldViolation]:
    violations = Violations()
    domain.check_fields(f, settings or EntitySettings(), violations, base_currency)
    return violations.items


def required(path: str) -> FieldViolation:
    return FieldViolation(path, "is required", "FIELD_REQUIRED")


def test_a_complete_advance_has_no_violation():
    assert checked(complete()) == []


def test_every_missing_field_is_reported_under_its_request_path():
    assert checked(AdvanceFields()) == [
        required("advance.customer.id"),
        required("advance.payment_information.payment_date"),
        required("advance.payment_information.receipt_date"),
        required("advance.payment_information.payment_method"),
        required("advance.items"),
    ]


def test_every_missing_line_field_is_reported_under_its_item():
    items = (line(), LineFields(), line(dimensions={"department": Ref("D1")}))
    assert checked(complete(items=items)) == [
        required("advance.items[1].gl_account.id"),
        required("advance.items[1].txn_amount"),
        required("advance.items[1].dimensions.location.id"),
        required("advance.items[2].dimensions.location.id"),
    ]


def test_a_field_already_reported_is_not_reported_again():
    violations = Violations()
    violations.add("advance.customer.id", "must be at most 100 characters", "TEXT_TOO_LONG")
    violations.add("advance.items[0].txn_amount", "must be more than 0", "AMOUNT_NOT_POSITIVE")
    violations.add(RATE_PATH, "must be a positive decimal", "EXCHANGE_RATE_INVALID")
    f = complete(customer_id="", items=(line(None),), txn_currency="EUR")
    domain.check_fields(f, EntitySettings(), violations)
    assert [v.reason for v in violations.items] == [
        "TEXT_TOO_LONG",
        "AMOUNT_NOT_POSITIVE",
        "EXCHANGE_RATE_INVALID",
    ]


def test_an_advance_holds_at_most_500_items():
    assert checked(complete(items=(line(1),) * 500)) == []
    assert checked(complete(items=(line(1),) * 501)) == [
        FieldViolation("advance.items", "must hold at most 500 items", "TOO_MANY_ITEMS")
    ]


def test_account_labels_are_required_on_every_line_when_the_entity_enables_them():
    settings = EntitySettings(ar_account_labels=True)
    items = (line(account_label=Ref("Travel")), line())
    assert checked(complete(items=items), settings) == [
        FieldViolation(
            "advance.items[1].account_label.id",
            "is required: the entity has account labels enabled",
            "ACCOUNT_LABEL_REQUIRED",
        )
    ]


def test_automatic_summaries_need_a_financial_entity_or_an_undeposited_account():
    settings = EntitySettings(ar_automatic_summaries=True)
    assert checked(complete(), settings) == [
        FieldViolation(
            "advance.payment_information.financial_entity.id",
            "is required, or else gl_account.undeposited_gl_account_number: the entity has "
            "AR automatic summaries enabled",
            "FINANCIAL_ENTITY_OR_UNDEPOSITED_ACCOUNT_REQUIRED",
        )
    ]
    assert checked(complete(financial_entity_id="BOA"), settings) == []
    assert checked(complete(undeposited_gl_account_number="1010"), settings) == []


def test_the_base_currency_needs_no_rate_and_only_a_rate_of_1():
    usd = EntitySettings(base_currency="USD")
    assert checked(complete(txn_currency="USD"), usd) == []
    assert checked(complete(txn_currency="USD", exchange_rate=Decimal("1.000")), usd) == []
    assert checked(complete(exchange_rate=Decimal("1.1")), usd) == [
        FieldViolation(
            RATE_PATH,
            "must be 1: the transaction currency is the base currency USD",
            "EXCHANGE_RATE_MUST_BE_ONE",
        )
    ]


def test_a_foreign_currency_needs_a_rate():
    settings = EntitySettings(base_currency="CAD")
    assert checked(complete(txn_currency="EUR"), settings) == [
        FieldViolation(
            RATE_PATH,
            "is required: the transaction currency EUR is not the base currency CAD",
            "EXCHANGE_RATE_REQUIRED",
        )
    ]
    assert checked(complete(txn_currency="EUR", exchange_rate=Decimal("1.4")), settings) == []


def test_a_new_advance_is_checked_against_the_entitys_base_currency():
    eur = EntitySettings(base_currency="EUR")
    for currency, expected in [("EUR", []), ("USD", ["EXCHANGE_RATE_REQUIRED"])]:
        violations = Violations()
        domain.check_fields(complete(txn_currency=currency), eur, violations)  # no base given
        assert [v.reason for v in violations.items] == expected


def test_an_existing_advance_keeps_the_base_currency_it_was_made_in():
    usd = EntitySettings(base_currency="USD")
    assert checked(complete(txn_currency="EUR"), usd, base_currency="EUR") == []
    assert [v.reason for v in checked(complete(txn_currency="USD"), usd, "EUR")] == [
        "EXCHANGE_RATE_REQUIRED"
    ]


def test_a_line_whose_base_amount_would_pass_the_maximum_is_refused():
    assert checked(complete(items=(line(MAX_CENTS),))) == []
    f = complete(
        items=(line(1000), line(MAX_CENTS)), txn_currency="EUR", exchange_rate=Decimal("1.01")
    )
    assert checked(f, EntitySettings()) == [
        FieldViolation(
            "advance.items[1].txn_amount",
            "its base amount at this exchange rate would pass 9999999999999.99",
            "AMOUNT_TOO_LARGE",
        )
    ]


def test_price_counts_a_line_without_an_amount_as_zero():
    f = complete(items=(line(None), line(250)), exchange_rate=Decimal("2"))
    assert domain.price(f) == domain.Priced((0, 500), 500, 250)


def test_merge_takes_only_the_named_attributes_from_the_patch():
    current = complete(description="old", reference_number="R1")
    patch = AdvanceFields(description="new", reference_number="R2", customer_id="X")
    merged = domain.merge(current, patch, {"description"})
    assert merged == replace(current, description="new")


def test_a_line_whose_base_amount_rounds_to_zero_is_refused():
    f = complete(
        items=(line(10000), line(1)), txn_currency="EUR", exchange_rate=Decimal("0.000001")
    )
    assert checked(f, EntitySettings()) == [
        FieldViolation(
            "advance.items[0].txn_amount",
            "its base amount at this exchange rate rounds to 0.00: 100.00 x 0.000001",
            "BASE_AMOUNT_ZERO",
        ),
        FieldViolation(
            "advance.items[1].txn_amount",
            "its base amount at this exchange rate rounds to 0.00: 0.01 x 0.000001",
            "BASE_AMOUNT_ZERO",
        ),
    ]
    # Half a cent rounds up: the line keeps a base amount.
    half = complete(items=(line(1),), txn_currency="EUR", exchange_rate=Decimal("0.5"))
    assert checked(half, EntitySettings()) == []


def test_a_line_without_an_amount_does_not_stop_the_next_from_being_checked():
    f = complete(items=(line(None), line(1)), txn_currency="EUR", exchange_rate=Decimal("0.000001"))
    assert [(v.field, v.reason) for v in checked(f, EntitySettings())] == [
        ("advance.items[0].txn_amount", "FIELD_REQUIRED"),
        ("advance.items[1].txn_amount", "BASE_AMOUNT_ZERO"),
    ]


def test_a_page_token_carries_every_filter_in_order():
    filters = domain.Filters(
        customer_id="C-1", state="posted", advance_number="ADV-7", reference_number="R-9",
        payment_date_from=date(2024, 1, 1), payment_date_to=date(2024, 12, 31),
    )  # fmt: skip
    assert filters.written() == ["C-1", "posted", "ADV-7", "R-9", "2024-01-01", "2024-12-31"]
    assert domain.Filters().written() == ["", "", "", "", "", ""]
