"""The contract: generated/ matches protos/, and every RPC declares its scope."""

import filecmp

from arcus.counters.v1 import counters_pb2

from service import protogen
from service.auth.scopes import method_scopes
from service.counters.domain import COUNTER_TYPES
from service.rpc.status import INTERNAL_REASON
from service.server import SERVICES


def test_generated_stubs_are_up_to_date_with_protos(tmp_path):
    fresh = tmp_path / "generated"
    protogen.generate(fresh)
    fresh_files = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(protogen.GENERATED)
        for p in protogen.GENERATED.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert committed == fresh_files, "run `make proto` and commit generated/"
    stale = [
        str(p)
        for p in fresh_files
        if not filecmp.cmp(fresh / p, protogen.GENERATED / p, shallow=False)
    ]
    assert stale == [], f"stale against protos/: {stale}; run `make proto`"


def test_every_method_declares_the_scope_design_md_gives():
    assert method_scopes(SERVICES) == {
        "/arcus.counters.v1.CounterService/AdvanceCounter": "migration:write",
        "/arcus.counters.v1.CounterService/BatchAdvanceCounters": "migration:write",
        "/arcus.counters.v1.CounterService/GetCounter": "counters:read",
        "/arcus.counters.v1.CounterService/ListCounters": "counters:read",
        "/arcus.counters.v1.CounterService/IssueNumbers": "counters:write",
        "/arcus.counters.v1.CounterService/UpdateCounter": "migration:write",
        "/arcus.counters.v1.CounterService/ListCounterEvents": "counters:read",
        "/arcus.counters.v1.CounterService/VoidNumbers": "counters:write",
        "/arcus.receivables.v1.AdvanceService/CreateAdvance": "advances:write",
        "/arcus.receivables.v1.AdvanceService/BatchCreateAdvances": "advances:write",
        "/arcus.receivables.v1.AdvanceService/GetAdvance": "advances:read",
        "/arcus.receivables.v1.AdvanceService/ListAdvances": "advances:read",
        "/arcus.receivables.v1.AdvanceService/UpdateAdvance": "advances:write",
        "/arcus.receivables.v1.AdvanceService/DeleteAdvance": "advances:write",
        "/arcus.receivables.v1.AdvanceService/SubmitAdvance": "advances:write",
        "/arcus.receivables.v1.AdvanceService/ReverseAdvance": "advances:write",
        "/arcus.receivables.v1.AdvanceService/ApplyAdvance": "advances:write",
        "/arcus.receivables.v1.AdvanceService/UnapplyAdvance": "advances:write",
    }


def test_counter_types_follow_the_reference_order():
    reference = [
        "order",
        "invoice",
        "quote",
        "po",
        "rma",
        "journal",
        "account",
        "vendor_bill",
        "ap_payment",
        "check",
        "transfer",
        "vendor_return",
        "refund",
        "inventory_txn",
        "work_order",
        "fixed_asset",
        "lease",
        "lease_payment",
        "deposit",
        "vendor_credit",
        "payment_batch",
    ]
    names = [v.name for v in counters_pb2.CounterType.DESCRIPTOR.values]
    assert names[0] == "COUNTER_TYPE_UNSPECIFIED"
    assert names[1:22] == [f"COUNTER_TYPE_{r.upper()}" for r in reference]
    assert counters_pb2.COUNTER_TYPE_PAYMENT_BATCH == 21
    assert counters_pb2.COUNTER_TYPE_AR_ADVANCE == 22
    # The domain's list is the enum's, in the same order.
    assert [f"COUNTER_TYPE_{t.upper()}" for t in COUNTER_TYPES] == names[1:]


# Reasons only the admin CLI gives (python -m service keys/entities/...): no RPC returns them.
CLI_ONLY_REASONS = {
    "API_KEY_NOT_FOUND", "ENTITY_ID_INVALID", "MONTH_OUT_OF_RANGE", "SCOPE_REQUIRED",
    "SCOPE_UNKNOWN", "TIME_ZONE_UNKNOWN",
}  # fmt: skip
# UPPER_SNAKE strings in service/ that are no reason: SQLite's error names, shown as the
# sqlstate of a conflict.
NOT_REASONS = {"SQLITE_BUSY", "SQLITE_CONSTRAINT_PRIMARYKEY"}


def test_the_protos_declare_every_reason_the_service_code_gives_and_no_other():
    """Every UPPER_SNAKE string in service/ is a reason some method declares (or a
    setting, an enum value name, or one of the lists above), and every declared reason
    is in the code: the error contract in the protos is neither short nor stale."""
    import re
    from pathlib import Path

    from service import config
    from tests.declared_errors import declared

    code = "\n".join(p.read_text() for p in Path(config.__file__).parent.rglob("*.py"))
    literals = set(re.findall(r"""["']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)["']""", code))
    literals.add(INTERNAL_REASON)  # the one reason without an underscore
    settings = {name for name, _, _ in config.described()}
    enum_values = {
        value.name
        for service in SERVICES
        for enum in service.file.enum_types_by_name.values()
        for value in enum.values
    }
    otel = {name for name in literals if name.startswith("OTEL_")}  # the SDK's variables
    reasons = literals - settings - enum_values - otel - NOT_REASONS - CLI_ONLY_REASONS
    declared_reasons = {reason for method in declared().values() for _, reason in method}
    assert sorted(reasons - declared_reasons) == []
    assert sorted(declared_reasons - literals) == []
