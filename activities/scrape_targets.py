"""Prometheus scrape targets of deployed containers: one file_sd JSON file per container.

The local Prometheus (local/platform.py) reads `<home>/prometheus/targets/*.json`
through `file_sd_configs` and re-reads the folder every second, so a container's
metrics are scraped from shortly after it starts until shortly after it stops, with
no Prometheus restart. Each file names one `host:port` and labels every series
scraped from it with `environment`, `service`, `track` ("stable" or "canary") and
`version`, which is what lets a canary analysis compare the two tracks.

Files are written atomically (temp file + rename, and the temp name does not end in
`.json`), so Prometheus never reads half a file. The files are the record of what is
scraped: nothing is kept in memory.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

from brewline.platform import PlatformSettings

TRACKS = ("stable", "canary")
# Labels this module sets from the arguments; `labels` may not override them.
FIXED_LABELS = ("environment", "service", "track")
REQUIRED_LABELS = ("version",)

# Environment and service names become part of a file name: no separators, no dots first.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# Prometheus label names; `__`-prefixed ones are reserved, except the few file_sd honours.
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RESERVED_ALLOWED = ("__metrics_path__", "__scheme__", "__scrape_interval__")
_ADDRESS = re.compile(r"[^\s/:]+:[0-9]{1,5}")


def targets_dir(settings: PlatformSettings) -> Path:
    """The folder Prometheus's `services` job watches."""
    return settings.prometheus_dir / "targets"


class ScrapeTargets:
    """Writes and removes `<targets>/<environment>-<service>-<track>.json` files."""

    def __init__(self, settings: PlatformSettings) -> None:
        self.directory = targets_dir(settings)

    def path(self, environment: str, service: str, track: str) -> Path:
        _check_name("environment", environment)
        _check_name("service", service)
        if track not in TRACKS:
            raise ValueError(f"track {track!r} is not one of {', '.join(TRACKS)}")
        return self.directory / f"{environment}-{service}-{track}.json"

    def write(
        self,
        environment: str,
        service: str,
        track: str,
        address: str,
        labels: Mapping[str, str],
    ) -> Path:
        """Have Prometheus scrape `address` (host:port, /metrics) as this track of the service.

        `labels` must hold `version` and may add more; `environment`, `service` and
        `track` come from the arguments. Replaces an earlier file for the same track.
        """
        path = self.path(environment, service, track)
        if not _ADDRESS.fullmatch(address):
            raise ValueError(
                f"scrape address {address!r} is not host:port (e.g. 127.0.0.1:8080); "
                "give the container's listen address without a scheme or path"
            )
        missing = [name for name in REQUIRED_LABELS if not labels.get(name)]
        if missing:
            raise ValueError(
                f"labels for {environment}/{service} ({track}) lack {', '.join(missing)}; "
                f"pass e.g. {{'version': '1.4.0'}}"
            )
        for name, value in labels.items():
            if name in FIXED_LABELS:
                raise ValueError(f"label {name!r} is set from the arguments; drop it from labels")
            reserved = name.startswith("__") and name not in _RESERVED_ALLOWED
            if not _LABEL_NAME.fullmatch(name) or reserved:
                raise ValueError(
                    f"label name {name!r} is not a valid Prometheus label name "
                    "([A-Za-z_][A-Za-z0-9_]*, not starting with __)"
                )
            if not isinstance(value, str):
                raise ValueError(f"label {name!r} has value {value!r}; label values are strings")
        group = {
            "targets": [address],
            "labels": {
                "environment": environment,
                "service": service,
                "track": track,
                **dict(labels),
            },
        }
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{path.stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump([group], out, indent=2, sort_keys=True)
                out.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a Prometheus user must read it
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    def remove(self, environment: str, service: str, track: str) -> bool:
        """Stop scraping this track of the service; False when it was not scraped."""
        try:
            self.path(environment, service, track).unlink()
        except FileNotFoundError:
            return False
        return True

    def remove_all(self) -> list[Path]:
        """Delete every target file (for `down`, which removes the containers themselves)."""
        if not self.directory.is_dir():
            return []
        removed = []
        for path in sorted(self.directory.glob("*.json")):
            path.unlink(missing_ok=True)
            removed.append(path)
        return removed

    def read(self, environment: str, service: str, track: str) -> dict[str, object] | None:
        """The target group of that file (`targets` and `labels`), or None without one."""
        try:
            groups = json.loads(self.path(environment, service, track).read_text())
        except FileNotFoundError:
            return None
        return dict(groups[0]) if groups else None


def _check_name(what: str, value: str) -> None:
    if not _NAME.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} cannot name a scrape target file; use letters, digits, "
            "'-', '_' or '.', starting with a letter or digit"
        )
