"""Severity ordering and the scan gate rule. Pure Python: the workflow may import it."""

from __future__ import annotations

SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def parse_severity(value: str) -> str:
    """Normalise a severity name; raise ValueError naming the value and what is allowed."""
    name = str(value).strip().upper()
    if name not in _RANK:
        raise ValueError(f"severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return name


def at_or_above(severity: str, threshold: str) -> bool:
    """True when `severity` is as bad as `threshold` or worse."""
    return _RANK[parse_severity(severity)] >= _RANK[parse_severity(threshold)]
