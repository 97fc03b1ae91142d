"""Admin CLI: python -m service serve | migrate | keys create|list|revoke | entities configure |
counters history | idempotency purge."""

import argparse
import csv
import gc
import itertools
import logging
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from service import logs, tracing
from service.auth.keys import Tenant, generate_key, validate_entity_id, validate_new_key
from service.auth.store import KeyStore
from service.config import ConfigError, Settings, described
from service.counters.domain import COUNTER_TYPES, Event, check_series
from service.counters.service import history
from service.db.engine import make_engine
from service.db.migrate import is_up_to_date, upgrade
from service.db.uow import UnitOfWork
from service.entities.store import EntityStore
from service.errors import InvalidArgument, ServiceError, Violations
from service.idempotency.store import Idempotency
from service.server import ListenError, all_scopes, check_listen, run_server
from service.values import parse_currency, parse_date, parse_time_zone

log = logging.getLogger("service")

DEV_ENTITY = "dev"
DEV_KEY_FILE = Path("var") / "dev-api-key"


def open_database(settings: Settings) -> Engine:
    """The configured database, migrated when it is the embedded one."""
    if settings.embedded:
        migrate(settings)
    engine = make_engine(
        settings.database,
        pool_size=settings.max_workers,
        prepared_statements=settings.prepared_statements,
        timeout=settings.database_timeout_seconds,
    )
    if not settings.embedded and not is_up_to_date(engine):
        raise SystemExit("the database schema is not up to date: run `python -m service migrate`")
    return engine


def migrate(settings: Settings) -> None:
    """Brings the schema up to date, with no time bound: a migration may rightly run long."""
    engine = make_engine(settings.database, pool_size=1)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def create_dev_key(engine: Engine) -> None:
    """First start on the embedded default: a test key for entity `dev` with every scope,
    so a newcomer can call the service at once.

    The file is written before the key is stored: if writing fails nothing is stored,
    and the next start tries again. The key goes to a terminal, never to the logs.
    """
    store = KeyStore(UnitOfWork(engine))
    if store.count():
        return
    key = generate_key("test")
    DEV_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    partial = DEV_KEY_FILE.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.replace(partial, DEV_KEY_FILE)
    record, _ = store.create(DEV_ENTITY, "test", sorted(all_scopes()), key)
    shown = key if sys.stdout.isatty() else "(not shown: output is not a terminal)"
    print(
        f"Created test API key {record.id} for entity '{DEV_ENTITY}' with every scope, "
        f"saved to {DEV_KEY_FILE}: {shown}",
        flush=True,
    )


def serve(settings: Settings) -> None:
    check_listen(settings.listen)  # before anything is made: a dev key, a database file
    try:
        traces = tracing.configure()  # off unless the OTEL_* variables ask for it
    except tracing.TracingError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        _serve(settings)
    finally:
        if traces is not None:
            traces.shutdown()  # exports the spans still buffered


def _serve(settings: Settings) -> None:
    engine = open_database(settings)
    if settings.embedded:
        create_dev_key(engine)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with run_server(engine, settings) as running:
        # What startup made lives as long as the process: kept out of the collector's
        # full passes, which then scan only what calls allocate (a full pass over the
        # whole heap paused a batch of 100 advances for 80 ms, one batch in twenty).
        gc.collect()
        gc.freeze()
        log.info(
            "serving on %s (port %d, %s)%s",
            settings.listen,
            running.port,
            "TLS" if settings.tls_cert else "plaintext",
            f"; metrics on port {running.metrics_port}" if running.metrics_port else "",
        )
        stop.wait()
        log.info("shutting down: finishing calls in flight")
    engine.dispose()


def keys_create(settings: Settings, args: argparse.Namespace) -> None:
    validate_new_key(args.entity, args.scope, all_scopes())
    mode = "test" if args.test else "live"
    record, key = KeyStore(UnitOfWork(open_database(settings))).create(
        args.entity, mode, args.scope
    )
    print(
        f"API key {record.id} for entity '{record.entity_id}' ({mode}), scopes: "
        f"{' '.join(record.scopes)}. It is shown only this once:",
        file=sys.stderr,
    )
    print(key)


def keys_list(settings: Settings, args: argparse.Namespace) -> None:
    records = KeyStore(UnitOfWork(open_database(settings))).list_keys(args.entity)
    header = ("ID", "KEY", "ENTITY", "MODE", "STATE", "CREATED", "SCOPES")
    print("{:>4}  {:<24}  {:<16}  {:<4}  {:<7}  {:<20}  {}".format(*header))
    for r in records:
        state = "revoked" if r.revoke_time else "active"
        created = r.create_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        print(
            f"{r.id:>4}  {r.hint:<24}  {r.entity_id:<16}  {r.mode:<4}  {state:<7}  {created:<20}  "
            f"{' '.join(r.scopes)}"
        )


def keys_revoke(settings: Settings, args: argparse.Namespace) -> None:
    started = datetime.now(UTC)
    record = KeyStore(UnitOfWork(open_database(settings))).revoke(args.id)
    which = f"API key {record.id} ({record.hint}) of entity '{record.entity_id}'"
    if record.revoke_time is not None and record.revoke_time < started:
        when = record.revoke_time.strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"{which} was already revoked on {when}: nothing changed")
        return
    print(f"revoked {which}")
    print(
        f"running servers refuse it within API_KEY_CACHE_SECONDS "
        f"({settings.key_cache_seconds:g} s here)",
        file=sys.stderr,
    )


def entities_configure(settings: Settings, args: argparse.Namespace) -> None:
    violations = Violations()
    validate_entity_id(args.entity, violations)
    changes: dict[str, object] = {}
    if args.automatic_summaries is not None:
        changes["ar_automatic_summaries"] = args.automatic_summaries == "on"
    if args.account_labels is not None:
        changes["ar_account_labels"] = args.account_labels == "on"
    if args.gl_closed_through is not None:
        closed = args.gl_closed_through
        changes["gl_closed_through"] = (
            None if closed == "none" else parse_date(closed, violations, "gl-closed-through")
        )
    if args.base_currency is not None:
        changes["base_currency"] = parse_currency(args.base_currency, violations, "base-currency")
    if args.fiscal_year_start_month is not None:
        month = args.fiscal_year_start_month
        if not 1 <= month <= 12:
            violations.add(
                "fiscal-year-start-month", f"must be 1..12; got {month}", "MONTH_OUT_OF_RANGE"
            )
        changes["fiscal_year_start_month"] = month
    if args.time_zone is not None:
        changes["time_zone"] = parse_time_zone(args.time_zone, violations, "time-zone")
    violations.raise_if_any()
    store = EntityStore(UnitOfWork(open_database(settings)))
    result = store.configure(args.entity, **changes)
    print(
        f"entity '{args.entity}': "
        f"automatic-summaries {'on' if result.ar_automatic_summaries else 'off'}, "
        f"account-labels {'on' if result.ar_account_labels else 'off'}, "
        f"gl-closed-through {result.gl_closed_through or 'none'}, "
        f"base-currency {result.base_currency}, "
        f"fiscal-year-start-month {result.fiscal_year_start_month}, "
        f"time-zone {result.time_zone}"
    )


HISTORY_COLUMNS = (
    "time", "counter_type", "series", "period", "kind", "previous_value", "new_value",
    "first_value", "last_value", "key_id", "idempotency_key", "event_id", "reason",
)  # fmt: skip
# A terminal's table: each column's width (the reason takes the rest of the line).
_TABLE = ((20, "<"), (13, "<"), (10, "<"), (7, "<"), (8, "<"), (12, ">"), (12, ">"),
          (12, ">"), (12, ">"), (10, ">"), (16, "<"), (16, "<"))  # fmt: skip


def counters_history(settings: Settings, args: argparse.Namespace) -> None:
    """The entity's counter events, oldest first: a table, or CSV for auditors. Streams:
    events are read a page at a time and written as they come."""
    violations = Violations()
    validate_entity_id(args.entity, violations)
    if args.series is not None:
        check_series(args.series, violations, "series")
    violations.raise_if_any()
    tenant = Tenant(args.entity, "test" if args.test else "live")
    events = history(UnitOfWork(open_database(settings)), tenant, args.type, args.series)
    rows = (_history_row(event) for event in events)
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(HISTORY_COLUMNS)
        writer.writerows(rows)
        return
    header: list[object] = [*HISTORY_COLUMNS]
    for row in itertools.chain([header], rows):
        *fixed, reason = row
        cells = [
            f"{str(cell)[:width]:{align}{width}}"
            for cell, (width, align) in zip(fixed, _TABLE, strict=True)
        ]
        print("  ".join([*cells, str(reason)]).rstrip())


def _history_row(event: Event) -> list[object]:
    return [
        event.time.strftime("%Y-%m-%dT%H:%M:%SZ"), event.counter_type, event.series,
        event.period, event.kind, event.previous_value, event.new_value,
        event.first_value or "", event.last_value or "",
        "" if event.api_key_id is None else event.api_key_id, event.idempotency_key or "",
        event.event_key, event.reason,
    ]  # fmt: skip


def idempotency_purge(settings: Settings) -> None:
    purged = Idempotency(UnitOfWork(open_database(settings))).purge()
    print(f"purged {purged} idempotency records older than 24 hours")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m service", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "serve",
        help="serve gRPC on GRPC_LISTEN (default 127.0.0.1:50051)",
        description="Serves gRPC until SIGTERM or SIGINT. Settings come from these "
        "environment variables; a bad value stops the service at once with one line.",
        epilog="\n".join(
            [
                *(
                    f"  {name:<38} {default or '(empty)':<16} {meaning}"
                    for name, default, meaning in described()
                ),
                "",
                "Tracing (off by default) takes OpenTelemetry's own OTEL_* variables, e.g.",
                "OTEL_TRACES_EXPORTER=otlp with OTEL_EXPORTER_OTLP_ENDPOINT, or =console;",
                "see the README, Operations, Tracing.",
            ]
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands.add_parser("migrate", help="bring the database schema up to date")

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key and print it once")
    create.add_argument("--entity", required=True, help="the entity (tenant) the key belongs to")
    create.add_argument(
        "--scope",
        required=True,
        action="extend",
        nargs="+",
        help=f"scopes: {' '.join(sorted(all_scopes()))}",
    )
    create.add_argument("--test", action="store_true", help="a test-mode key (ark_test_ent_…)")
    listing = keys.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--entity", help="only this entity's keys")
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", type=int)

    entities = commands.add_parser("entities", help="manage entities").add_subparsers(
        dest="entities_command", required=True
    )
    configure = entities.add_parser(
        "configure", help="set an entity's accounting settings (and print them all)"
    )
    configure.add_argument("entity")
    on_off = ("on", "off")
    configure.add_argument(
        "--automatic-summaries",
        choices=on_off,
        help="AR automatic summaries (advances then "
        "need a financial entity or an undeposited-funds GL account)",
    )
    configure.add_argument(
        "--account-labels",
        choices=on_off,
        help="AR account labels (every advance line then needs one)",
    )
    configure.add_argument(
        "--gl-closed-through", metavar="YYYY-MM-DD|none", help="the GL is closed through this date"
    )
    configure.add_argument("--base-currency", metavar="CODE", help="ISO 4217, default USD")
    configure.add_argument(
        "--fiscal-year-start-month",
        type=int,
        metavar="1..12",
        help="the month fiscal years start in (default 1); FY2026 is the one ending in 2026",
    )
    configure.add_argument(
        "--time-zone",
        metavar="IANA",
        help='the zone whose date is "today" for counters, e.g. Europe/Berlin (default UTC)',
    )

    counters = commands.add_parser("counters", help="document-number counters").add_subparsers(
        dest="counters_command", required=True
    )
    history_command = counters.add_parser(
        "history", help="every change to the entity's counters, oldest first (for auditors)"
    )
    history_command.add_argument("--entity", required=True)
    history_command.add_argument("--test", action="store_true", help="the test-mode counters")
    history_command.add_argument("--type", choices=COUNTER_TYPES, help="only this counter type")
    history_command.add_argument("--series", help="only this series")
    history_command.add_argument("--csv", action="store_true", help="CSV, for spreadsheets")

    idempotency = commands.add_parser("idempotency", help="idempotency records").add_subparsers(
        dest="idempotency_command", required=True
    )
    idempotency.add_parser(
        "purge", help="delete records older than 24 hours (the server also does)"
    )
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    try:
        if args.command == "serve":
            serve(settings)
        elif args.command == "migrate":
            migrate(settings)
            print("database schema is up to date", file=sys.stderr)
        elif args.command == "keys" and args.keys_command == "create":
            keys_create(settings, args)
        elif args.command == "keys" and args.keys_command == "list":
            keys_list(settings, args)
        elif args.command == "keys" and args.keys_command == "revoke":
            keys_revoke(settings, args)
        elif args.command == "entities":
            entities_configure(settings, args)
        elif args.command == "counters":
            counters_history(settings, args)
        elif args.command == "idempotency":
            idempotency_purge(settings)
    except InvalidArgument as error:
        for violation in error.violations:
            print(f"error: {violation.field}: {violation.description}", file=sys.stderr)
        return 2
    except ServiceError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        print(f"error: cannot use the database: {reason}", file=sys.stderr)
        return 2
    except ListenError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
