"""run_go_tests and build_static_binary with the real Go toolchain on tests/fixtures/gomod.

The tests share one platform home whose `go/` folder (GOCACHE, GOPATH) is kept in
pytest's cache between sessions: compiling the race-enabled standard library takes
50-90 s cold and the tests' subject is the activity, not a cold cache. Test results are
never cached (`-count=1`). `pytest --cache-clear` starts cold.
"""

from __future__ import annotations

import os
import struct
import subprocess
import uuid
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.golang import (
    GoActivities,
    build_static_binary,
    coverage_from_profile,
    go_env,
    package_pattern,
    parse_test_json,
)
from brewline.model import GoTestInput, GoTestResult
from brewline.platform import REPO_ROOT, PlatformSettings

FIXTURES = REPO_ROOT / "tests" / "fixtures"
GO_MODULE = "gomod"


@pytest.fixture(scope="module")
def settings(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> PlatformSettings:
    home = tmp_path_factory.mktemp("go-home")
    assert pytestconfig.cache is not None
    (home / "go").symlink_to(pytestconfig.cache.mkdir("brewline-go"), target_is_directory=True)
    return PlatformSettings(home=str(home))


@pytest.fixture(scope="module")
def acts(settings: PlatformSettings) -> GoActivities:
    return GoActivities(settings)


def go_input(package: str, *, coverage_min: float = 0.0, timeout: int = 300) -> GoTestInput:
    return GoTestInput(
        release_id=f"r-{uuid.uuid4().hex[:8]}",
        service="fixture-svc",
        source=str(FIXTURES),
        go_module=GO_MODULE,
        package=package,
        coverage_min=coverage_min,
        timeout_seconds=timeout,
    )


async def run_tests(acts: GoActivities, input: GoTestInput) -> GoTestResult:
    return await ActivityEnvironment().run(acts.run_go_tests, input)


async def expect_error(acts: GoActivities, input: GoTestInput) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run_tests(acts, input)
    return caught.value


# ---- run_go_tests -----------------------------------------------------------------------


async def test_passing_package_counts_tests_and_coverage(
    acts: GoActivities, settings: PlatformSettings
) -> None:
    input = go_input("./pass", coverage_min=90)
    result = await run_tests(acts, input)

    # TestAdd, TestSub and its two subtests
    assert result.tests_passed == 4
    assert result.coverage_percent == 100.0
    out_dir = settings.release_dir(input.release_id) / "fixture-svc"
    assert result.log_path == str(out_dir / "go-test.log")
    log = Path(result.log_path).read_text()
    assert "--- PASS: TestSub/negative" in log
    assert '"Action"' not in log  # readable text, not the JSON events
    assert (out_dir / "coverage.out").read_text().startswith("mode: atomic")  # -race


async def test_coverage_equals_go_tool_cover(
    acts: GoActivities, settings: PlatformSettings
) -> None:
    input = go_input("./lowcov")
    result = await run_tests(acts, input)

    profile = settings.release_dir(input.release_id) / "fixture-svc" / "coverage.out"
    cover = subprocess.run(
        [acts.go, "tool", "cover", f"-func={profile}"],
        cwd=FIXTURES / GO_MODULE,
        env=go_env(settings.home_path, cgo=True),
        capture_output=True,
        text=True,
        check=True,
    )
    total_line = cover.stdout.strip().splitlines()[-1]
    assert total_line.startswith("total:")
    go_percent = float(total_line.split()[-1].rstrip("%"))
    assert result.coverage_percent == pytest.approx(go_percent, abs=0.05)
    assert 0 < result.coverage_percent < 50
    assert result.tests_passed == 1


async def test_coverage_below_gate_names_both_numbers(acts: GoActivities) -> None:
    err = await expect_error(acts, go_input("./lowcov", coverage_min=80))

    assert err.type == "CoverageBelowGate"
    assert err.non_retryable
    assert "fixture-svc" in err.message
    assert "16.7%" in err.message
    assert "80.0%" in err.message


async def test_failing_test_is_named_with_the_log(
    acts: GoActivities, settings: PlatformSettings
) -> None:
    input = go_input("./fail")
    err = await expect_error(acts, input)

    assert err.type == "TestsFailed"
    assert err.non_retryable
    assert "fixture-svc" in err.message
    assert "TestDiscount (fail)" in err.message
    assert "TestTotal" not in err.message  # it passed
    log_path = settings.release_dir(input.release_id) / "fixture-svc" / "go-test.log"
    assert str(log_path) in err.message
    assert "Discount(1000, 10) = 1100, want 900" in log_path.read_text()


async def test_compile_error_counts_as_tests_failed(acts: GoActivities) -> None:
    err = await expect_error(acts, go_input("./broken"))

    assert err.type == "TestsFailed"
    assert err.non_retryable
    assert "example.com/brewline-fixture/broken [build failed]" in err.message
    assert "broken.go:4" in err.message


async def test_race_detector_is_on(acts: GoActivities) -> None:
    # the same package passes without -race (see tests/fixtures/gomod/README.md)
    err = await expect_error(acts, go_input("./race"))

    assert err.type == "TestsFailed"
    assert "TestCountOrders (race)" in err.message


async def test_hanging_test_fails_at_the_timeout(acts: GoActivities) -> None:
    err = await expect_error(acts, go_input("./hang", timeout=3))

    assert err.type == "TestsFailed"
    assert err.non_retryable
    assert "TestWaitsForever (hang)" in err.message


async def test_missing_module_is_bad_input(acts: GoActivities) -> None:
    input = go_input("./pass")
    input.go_module = "no-such-module"
    err = await expect_error(acts, input)

    assert err.type == "InvalidConfig"
    assert err.non_retryable
    assert "no-such-module" in err.message


@pytest.mark.parametrize("package", ["-exec=/bin/true", "", "./a b"])
async def test_flag_like_package_is_refused(acts: GoActivities, package: str) -> None:
    err = await expect_error(acts, go_input(package))

    assert err.type == "InvalidConfig"


# ---- build_static_binary ----------------------------------------------------------------


def elf_interpreter(path: Path) -> bool:
    """True when the ELF file asks for a dynamic loader (PT_INTERP): not static."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2  # 64-bit
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    types = [struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)]
    return 3 in types


async def test_static_binary_carries_the_version(
    settings: PlatformSettings, tmp_path: Path
) -> None:
    out = tmp_path / "bin" / "version"
    log = tmp_path / "build.log"
    await build_static_binary(
        FIXTURES, GO_MODULE, "./cmd/version", "1.4.2-rc.1", out, log, settings=settings
    )

    assert os.access(out, os.X_OK)
    assert not elf_interpreter(out)
    printed = subprocess.run([str(out)], capture_output=True, text=True, check=True)
    assert printed.stdout.strip() == "1.4.2-rc.1"
    assert "-trimpath" in log.read_text()


async def test_static_binary_compile_error_is_build_failed(
    settings: PlatformSettings, tmp_path: Path
) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(ApplicationError) as caught:
        await build_static_binary(
            FIXTURES, GO_MODULE, "./broken", "1.0.0", tmp_path / "out", log, settings=settings
        )

    assert caught.value.type == "BuildFailed"
    assert caught.value.non_retryable
    assert "broken.go:4" in caught.value.message
    assert str(log) in caught.value.message


async def test_static_binary_refuses_a_version_with_spaces(
    settings: PlatformSettings, tmp_path: Path
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await build_static_binary(
            FIXTURES,
            GO_MODULE,
            "./cmd/version",
            "1.0 -X main.other=x",
            tmp_path / "out",
            tmp_path / "build.log",
            settings=settings,
        )

    assert caught.value.type == "BuildFailed"
    assert "1.0 -X main.other=x" in caught.value.message


# ---- pure helpers -----------------------------------------------------------------------


def test_coverage_counts_a_repeated_block_once() -> None:
    profile = "\n".join(
        [
            "mode: atomic",
            "m/a.go:3.10,5.2 2 0",
            "m/a.go:6.10,8.2 3 0",
            "m/a.go:3.10,5.2 2 4",  # the same block from a second test binary, covered
            "m/b.go:1.1,2.2 5 0",
        ]
    )
    coverage = coverage_from_profile(profile)

    assert (coverage.covered, coverage.total) == (2, 10)
    assert coverage.percent == 20.0


def test_coverage_of_an_empty_profile_is_zero() -> None:
    assert coverage_from_profile("mode: set\n").percent == 0.0


def test_malformed_profile_line_is_reported() -> None:
    with pytest.raises(ValueError, match="line 2"):
        coverage_from_profile("mode: set\nm/a.go:1.1,2.2 x 1\n")


def test_package_patterns() -> None:
    assert package_pattern("./api-gateway") == "./api-gateway/..."
    assert package_pattern("./api-gateway/") == "./api-gateway/..."
    assert package_pattern(".") == "./..."
    assert package_pattern("./internal/...") == "./internal/..."


def test_parse_test_json_keeps_non_json_lines_and_package_failures() -> None:
    lines = [
        "$ go test ...",
        '{"Action":"start","Package":"m/p"}',
        '{"Action":"output","Package":"m/p","Output":"panic: boom in TestMain\\n"}',
        '{"Action":"fail","Package":"m/p","Elapsed":0.1}',
    ]
    parsed = parse_test_json(lines)

    assert parsed.failed == []
    assert parsed.failed_packages == ["m/p"]
    assert parsed.text == ["$ go test ...", "panic: boom in TestMain"]
