"""Domain errors. Each carries one machine-readable reason (AIP-193) and a kind
that the entry points map to a transport status; the domain knows no transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Kind(Enum):
    INVALID = "invalid"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FAILED_PRECONDITION = "failed_precondition"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


@dataclass
class FieldViolation:
    field: str
    description: str


@dataclass
class DomainError(Exception):
    reason: str
    message: str
    kind: Kind = Kind.FAILED_PRECONDITION
    metadata: dict[str, str] = field(default_factory=dict)
    violations: list[FieldViolation] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


def invalid(violations: list[FieldViolation], message: str = "The given data was invalid.") -> DomainError:
    return DomainError("INVALID_ARGUMENT", message, Kind.INVALID, violations=violations)


def not_found(what: str, ident: object) -> DomainError:
    return DomainError(f"{what.upper()}_NOT_FOUND", f"{what} not found", Kind.NOT_FOUND,
                       metadata={what: str(ident)})


def unauthenticated(message: str = "Unauthenticated.") -> DomainError:
    return DomainError("UNAUTHENTICATED", message, Kind.UNAUTHENTICATED)


def permission_denied(message: str = "Permission denied.") -> DomainError:
    return DomainError("PERMISSION_DENIED", message, Kind.PERMISSION_DENIED)


class Violations:
    """Collects every bad field before failing, so clients see all of them at once."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field_name: str, description: str) -> None:
        self.items.append(FieldViolation(field_name, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise invalid(self.items)
