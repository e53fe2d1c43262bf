"""Load for canary analysis: `hey` sends steady requests through an environment's router.

A canary on the local platform has no real users, so the canary workflow runs this
activity beside the analysis (Flagger's load tester does the same with
`hey -z 1m -q 10 -c 2 URL`) and cancels it when the canary ends. Requests go to
`<entry point of env>/<service><path>` on 127.0.0.1, so Traefik splits them between
stable and canary and its per-leaf metrics see them. Use a GET path (`/health`,
`/api/v1/menu`): the example services answer 415 to a POST without JSON.

hey runs through `activities.runner.run`: heartbeats while it runs, and its process
group is killed when the activity is cancelled or times out. Its summary is parsed
into the number of requests and the count of each HTTP status code; requests that
got no HTTP answer at all (refused, timed out) count under the code "error".
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.runner import run
from brewline.model import LoadInput, LoadResult
from brewline.platform import PlatformSettings, tool_path

# What hey may be pointed at: the platform's entry points only, never another host.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
NO_ANSWER = "error"  # status_codes key of requests that got no HTTP answer
MAX_CONCURRENCY = 256
MAX_DURATION_SECONDS = 24 * 3600

_SERVICE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_TOTAL = re.compile(r"^\s*Total:\s+([0-9.]+)\s+secs\s*$")
_CODE_LINE = re.compile(r"^\s*\[(\d+)\]\s+(\d+) responses")  # "  [200]\t32 responses"
_ERROR_LINE = re.compile(r"^\s*\[(\d+)\]\s+(.*)$")  # "  [10]\tGet "http://...": ..."


@dataclass
class HeySummary:
    """What hey's summary says: seconds it ran, answers per status code, requests with
    no answer (by error text)."""

    total_seconds: float
    status_codes: dict[str, int]
    errors: dict[str, int]

    @property
    def requests(self) -> int:
        return sum(self.status_codes.values()) + sum(self.errors.values())


def parse_hey_summary(lines: list[str]) -> HeySummary | None:
    """Parse hey's default (non-CSV) report; None when there is no "Summary:" in it."""
    if not any(line.strip() == "Summary:" for line in lines):
        return None
    total = 0.0
    codes: dict[str, int] = {}
    errors: dict[str, int] = {}
    section = ""
    for line in lines:
        stripped = line.strip()
        if stripped.endswith(":") and not line.startswith((" ", "\t")):
            section = stripped[:-1]  # "Summary", "Status code distribution", ...
            continue
        if section == "Summary":
            match = _TOTAL.match(line)
            if match:
                total = float(match.group(1))
        elif section == "Status code distribution":
            match = _CODE_LINE.match(line)
            if match:
                codes[match.group(1)] = codes.get(match.group(1), 0) + int(match.group(2))
        elif section == "Error distribution":
            match = _ERROR_LINE.match(line)
            if match:
                what = match.group(2).strip() or "unknown error"
                errors[what] = errors.get(what, 0) + int(match.group(1))
    return HeySummary(total, codes, errors)


def _invalid(message: str, kind: str = "InvalidInput") -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


class LoadGeneratorFailed(Exception):
    """hey exited with an error or printed no summary (retryable: it may be a hiccup)."""


class LoadActivities:
    """The `generate_load` activity: hey against the platform's Traefik entry points."""

    def __init__(
        self,
        settings: PlatformSettings,
        hey: str = "hey",
        *,
        request_timeout: int = 10,
        heartbeat_every: float = 1.0,
    ) -> None:
        self.settings = settings
        self.hey = hey
        self.request_timeout = request_timeout
        self.heartbeat_every = heartbeat_every

    def url(self, input: LoadInput) -> str:
        """The URL hey loads, after checking every part of the input that goes into it."""
        if not _SERVICE.fullmatch(input.service):
            raise _invalid(
                f"service name {input.service!r} is not usable in a route; "
                "use lower-case letters, digits and dashes"
            )
        path = input.path
        if (
            not path.startswith("/")
            or path.startswith("//")
            or any(ch.isspace() or ch == "#" for ch in path)
        ):
            raise _invalid(
                f"load path {path!r} must be an absolute path with no spaces or fragment, "
                "e.g. /health or /api/v1/menu"
            )
        try:
            base = self.settings.entrypoint_url(input.environment)
        except KeyError as err:
            raise _invalid(str(err.args[0]), "InvalidConfig") from None
        url = f"{base}/{input.service}{path}"
        host = urllib.parse.urlsplit(url).hostname
        if host not in LOOPBACK_HOSTS:
            raise _invalid(
                f"load URL {url} is not on the loopback interface; the load generator only "
                f"targets the local platform's entry points ({', '.join(sorted(LOOPBACK_HOSTS))})",
                "InvalidConfig",
            )
        return url

    def _check_rates(self, input: LoadInput) -> None:
        rate, concurrency, duration = (
            input.rate_per_second,
            input.concurrency,
            input.duration_seconds,
        )
        # hey reads a rate of 0 as "no limit": refuse it rather than flood the machine
        if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
            raise _invalid(f"load rate {rate!r} requests/s must be a number above 0, e.g. 20")
        if not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
            raise _invalid(
                f"load concurrency {concurrency!r} must be a whole number from 1 to "
                f"{MAX_CONCURRENCY}, e.g. 2"
            )
        if not isinstance(duration, int) or not 1 <= duration <= MAX_DURATION_SECONDS:
            raise _invalid(
                f"load duration {duration!r} s must be a whole number of seconds from 1 to "
                f"{MAX_DURATION_SECONDS}; the workflow cancels the load when the canary ends"
            )

    def argv(self, input: LoadInput, url: str) -> list[str]:
        # -q is per worker: split the total rate between the -c workers
        per_worker = input.rate_per_second / input.concurrency
        return [
            self.hey if "/" in self.hey else tool_path(self.hey, "BREWLINE_HEY"),
            "-z",
            f"{input.duration_seconds}s",
            "-q",
            f"{per_worker:g}",
            "-c",
            str(input.concurrency),
            "-t",
            str(self.request_timeout),
            "-m",
            "GET",
            url,
        ]

    @activity.defn(name="generate_load")
    async def generate_load(self, input: LoadInput) -> LoadResult:
        """Send `rate_per_second` GETs a second to the service for `duration_seconds`."""
        self._check_rates(input)
        url = self.url(input)
        argv = self.argv(input, url)
        log_path = (
            self.settings.release_dir(input.release_id or "no-release")
            / "load"
            / f"{input.environment}-{input.service}.log"
        )
        log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = log_path.stat().st_size if log_path.exists() else 0
        result = await run(
            argv,
            log_path=log_path,
            # hey stops itself after -z; the margin covers its last requests' timeout
            timeout=input.duration_seconds + self.request_timeout + 30,
            heartbeat_every=self.heartbeat_every,
        )
        lines = _read_from(log_path, offset)
        summary = parse_hey_summary(lines)
        if not result.ok or summary is None:
            raise LoadGeneratorFailed(
                f"hey against {url} exited with {result.returncode} "
                f"{'without a summary' if summary is None else ''}; log {log_path}; "
                f"last output:\n{result.tail_text(10)}"
            )
        codes = dict(summary.status_codes)
        no_answer = sum(summary.errors.values())
        if no_answer:
            codes[NO_ANSWER] = codes.get(NO_ANSWER, 0) + no_answer
            activity.logger.warning(
                "%d of %d requests to %s got no answer: %s",
                no_answer,
                summary.requests,
                url,
                "; ".join(f"{n}x {what}" for what, n in summary.errors.items()),
            )
        return LoadResult(
            requests=summary.requests,
            status_codes=codes,
            duration_seconds=summary.total_seconds,
        )


def _read_from(path: Path, offset: int) -> list[str]:
    """Lines a command appended to its log (the runner keeps only a tail in memory)."""
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace").splitlines()
