"""Errors the domain raises. They know nothing of gRPC: service/rpc/status.py maps
each kind to its status code in one place.

Every error has a stable UPPER_SNAKE `reason` (sent as google.rpc.ErrorInfo.reason)
and optional `metadata`; InvalidArgument also carries field violations.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    field: str  # dotted path into the request, e.g. "counters[3].padding"
    description: str
    reason: str


class ServiceError(Exception):
    def __init__(
        self,
        reason: str,
        message: str,
        metadata: dict[str, str] | None = None,
        domain: str | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = metadata or {}
        # The ErrorInfo domain; None means the package of the RPC that failed.
        self.domain = domain


# The ErrorInfo reason of bad input with violations of more than one reason.
SEVERAL_REASONS = "INVALID_FIELDS"


class InvalidArgument(ServiceError):
    def __init__(self, violations: list[FieldViolation]) -> None:
        if not violations:
            raise ValueError("InvalidArgument needs at least one violation")
        message = "; ".join(f"{v.field}: {v.description}" for v in violations)
        reasons = list(dict.fromkeys(v.reason for v in violations))
        if len(reasons) == 1:
            super().__init__(reasons[0], message)
        else:  # one reason cannot name several: say so, and which (BadRequest has each)
            metadata = {"violations": str(len(violations)), "reasons": ",".join(reasons)}
            super().__init__(SEVERAL_REASONS, message, metadata=metadata)
        self.violations = list(violations)

    def under(self, path: str) -> "InvalidArgument":
        """The same violations for a request nested at `path`, e.g. "counters[3]."."""
        return InvalidArgument(
            [FieldViolation(path + v.field, v.description, v.reason) for v in self.violations]
        )


class NotFound(ServiceError):
    pass


class AlreadyExists(ServiceError):
    pass


class FailedPrecondition(ServiceError):
    pass


class Aborted(ServiceError):
    pass


class OutOfRange(ServiceError):
    pass


class Unauthenticated(ServiceError):
    pass


class Unavailable(ServiceError):
    """The database cannot be reached: retry later (UNAVAILABLE)."""


class TransientConflict(Aborted):
    """The database gave up on a transaction to resolve a conflict (a serialization
    failure or deadlock); running it again will most likely succeed."""


class PermissionDenied(ServiceError):
    pass


@dataclass
class Violations:
    """Collects every problem with a request before raising, so callers see them all."""

    items: list[FieldViolation] = field(default_factory=list)
    # The fields reported so far: `has` is asked once per field of a request, so it must
    # not scan the list (that made validating N bad items cost N squared).
    _fields: set[str] = field(default_factory=set, repr=False)

    def add(self, field_path: str, description: str, reason: str) -> None:
        self.items.append(FieldViolation(field_path, description, reason))
        self._fields.add(field_path)

    def has(self, field_path: str) -> bool:
        return field_path in self._fields

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
