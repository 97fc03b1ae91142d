"""An entity's accounting settings: they switch the reference's conditional rules on."""

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class EntitySettings:
    # AR automatic summaries: an advance then needs a financial entity or an
    # undeposited-funds GL account.
    ar_automatic_summaries: bool = False
    # AR account labels: every advance line then needs an account label.
    ar_account_labels: bool = False
    # The general ledger is closed through this date: nothing dated on or before it
    # may be created, updated, deleted or reversed.
    gl_closed_through: date | None = None
    base_currency: str = "USD"
    # Fiscal years start on the 1st of this month (1..12) and are named by the calendar
    # year in which they end: with 7, FY2026 runs 2025-07-01..2026-06-30.
    fiscal_year_start_month: int = 1
    # The IANA time zone whose date is "today" for the entity (counters' periods).
    time_zone: str = "UTC"

    def today(self, now: datetime) -> date:
        """The entity's date at the instant `now`."""
        return now.astimezone(ZoneInfo(self.time_zone)).date()

    def period_open(self, day: date) -> bool:
        return self.gl_closed_through is None or day > self.gl_closed_through
