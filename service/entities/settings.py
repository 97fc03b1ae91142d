"""An entity's accounting settings: they switch the reference's conditional rules on."""

from dataclasses import dataclass
from datetime import date


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

    def period_open(self, day: date) -> bool:
        return self.gl_closed_through is None or day > self.gl_closed_through
