"""Severity ordering and the scan gate rule.

Pure Python with no I/O: the workflow sandbox and the pipeline.yaml validator import it.
The names are Trivy's; other scanners' levels are mapped onto them by their activities.
"""

from __future__ import annotations

# Lowest first. UNKNOWN is a finding whose tool gave no usable severity: it still counts,
# but only a gate set to UNKNOWN fails on it.
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def parse_severity(value: object) -> str:
    """Normalise a severity name ("high" -> "HIGH").

    Raises ValueError naming the value and the allowed names.
    """
    if not isinstance(value, str) or value.strip().upper() not in _RANK:
        raise ValueError(f"severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return value.strip().upper()


def rank(severity: str) -> int:
    """Position of `severity` in SEVERITIES (0 = UNKNOWN ... 4 = CRITICAL)."""
    return _RANK[parse_severity(severity)]


def at_or_above(severity: str, threshold: str) -> bool:
    """True when `severity` is as bad as `threshold` or worse (the gate fails on it)."""
    return rank(severity) >= rank(threshold)
