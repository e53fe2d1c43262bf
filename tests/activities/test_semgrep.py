"""semgrep_scan with the real semgrep, offline, and the rules in policy/semgrep/go.yml.

tests/fixtures/semgrep/*.go hold, for every rule, code it must flag (a `// ruleid: <id>`
comment on the line above) and code it must leave alone (`// ok: <id>`), the notation
of `semgrep --test`. The fixtures are copied out of tests/ first: semgrep's default
ignores skip `tests/` folders.
"""

from __future__ import annotations

import collections
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.sarif import read_json
from activities.semgrep import SemgrepActivities, semgrep_severity
from brewline.model import ScanInput, ScanResult
from brewline.platform import REPO_ROOT, PlatformSettings

POLICY = REPO_ROOT / "policy" / "semgrep" / "go.yml"
RULES = "policy/semgrep/go.yml"
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "semgrep"
ANNOTATION = re.compile(r"//\s*(ruleid|ok):\s*([\w-]+)")


@pytest.fixture
def settings(tmp_path: Path) -> PlatformSettings:
    return PlatformSettings(home=str(tmp_path / "home"))


@pytest.fixture
def acts(settings: PlatformSettings) -> SemgrepActivities:
    return SemgrepActivities(settings)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A source tree with the repo's rules and the rule fixtures as service code."""
    src = tmp_path / "src"
    (src / "policy" / "semgrep").mkdir(parents=True)
    shutil.copy(POLICY, src / RULES)
    shutil.copytree(FIXTURES, src / "svc")
    return src


def scan_input(
    source: Path, paths: list[str], fail_on: str = "HIGH", rules: str = RULES
) -> ScanInput:
    return ScanInput(
        release_id=f"r-{uuid.uuid4().hex[:8]}",
        service="producer",
        source=str(source),
        paths=paths,
        fail_on=fail_on,
        semgrep_rules=rules,
    )


async def scan(acts: SemgrepActivities, input: ScanInput) -> ScanResult:
    return await ActivityEnvironment().run(acts.semgrep_scan, input)


async def expect_error(acts: SemgrepActivities, input: ScanInput) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await scan(acts, input)
    return caught.value


def policy_rules() -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in yaml.safe_load(POLICY.read_text())["rules"]}


def rule_examples(folder: Path, prefix: str) -> tuple[dict[str, set], dict[str, set]]:
    """Per rule id: the (path, line) pairs it must flag, and those it must not."""
    must: dict[str, set] = collections.defaultdict(set)
    must_not: dict[str, set] = collections.defaultdict(set)
    for file in sorted(folder.glob("*.go")):
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            match = ANNOTATION.search(line)
            if match:
                kind, rule = match.groups()
                # the annotation is about the next line
                (must if kind == "ruleid" else must_not)[rule].add(
                    (f"{prefix}/{file.name}", number + 1)
                )
    return must, must_not


# ---- the rules ----------------------------------------------------------------------------


async def test_every_rule_fires_on_its_examples_and_only_there(
    acts: SemgrepActivities, source: Path
) -> None:
    # CRITICAL: no rule here is CRITICAL, so the gate passes and the report is complete
    result = await scan(acts, scan_input(source, ["svc"], fail_on="CRITICAL"))

    report = read_json(Path(result.sarif_path).with_name("semgrep.json"))
    found: dict[str, set] = collections.defaultdict(set)
    for finding in report["results"]:
        found[finding["check_id"]].add((finding["path"], finding["start"]["line"]))
    must, must_not = rule_examples(FIXTURES, "svc")
    rules = policy_rules()

    for rule in rules:
        assert must[rule], f"{rule} has no positive example in {FIXTURES}"
        assert must_not[rule], f"{rule} has no negative example in {FIXTURES}"
        assert found[rule] == must[rule], f"{rule}: flagged {found[rule]}, expected {must[rule]}"
        assert not found[rule] & must_not[rule]
    assert set(found) <= set(rules)
    assert len(report["results"]) == sum(len(lines) for lines in found.values())  # no repeats
    assert report["errors"] == []


async def test_counts_follow_the_severity_mapping(acts: SemgrepActivities, source: Path) -> None:
    result = await scan(acts, scan_input(source, ["svc"], fail_on="CRITICAL"))

    must, _ = rule_examples(FIXTURES, "svc")
    expected = dict.fromkeys(("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL"), 0)
    for rule_id, rule in policy_rules().items():
        level = {"ERROR": "HIGH", "WARNING": "MEDIUM", "INFO": "LOW"}[rule["severity"]]
        expected[level] += len(must[rule_id])
    assert result.counts == expected
    assert result.counts["HIGH"] > 0 and result.counts["MEDIUM"] > 0 and result.counts["LOW"] > 0
    assert result.gate_findings == []
    sarif = read_json(Path(result.sarif_path))
    assert sum(len(run["results"]) for run in sarif["runs"]) == sum(expected.values())


async def test_error_rules_fail_the_high_gate(
    acts: SemgrepActivities, settings: PlatformSettings, source: Path
) -> None:
    input = scan_input(source, ["svc"], fail_on="HIGH")
    err = await expect_error(acts, input)

    assert err.type == "ScanGateFailed"
    assert err.non_retryable
    assert "semgrep gate failed for producer" in err.message
    assert "go-exec-shell [HIGH] svc/go-exec-shell.go:10: The command runs through a shell" in (
        err.message
    )
    assert "[MEDIUM]" not in err.message
    assert "more" in err.message  # more HIGH findings than the message lists
    sarif_path = settings.release_dir(input.release_id) / "producer" / "semgrep.sarif"
    assert str(sarif_path) in err.message
    assert sarif_path.is_file()


async def test_test_files_are_not_scanned(acts: SemgrepActivities, source: Path) -> None:
    clean = source / "clean"
    clean.mkdir()
    (clean / "main.go").write_text('package main\n\nfunc main() { println("ready") }\n')
    # semgrep's default ignores skip *_test.go: a shell in a test helper is not flagged
    shutil.copy(FIXTURES / "go-exec-shell.go", clean / "helpers_test.go")
    result = await scan(acts, scan_input(source, ["clean"], fail_on="LOW"))

    assert sum(result.counts.values()) == 0


async def test_metadata_severity_overrides_the_level(acts: SemgrepActivities, source: Path) -> None:
    (source / "custom.yml").write_text(
        yaml.safe_dump(
            {
                "rules": [
                    {
                        "id": "no-println",
                        "languages": ["go"],
                        "severity": "WARNING",
                        "metadata": {"severity": "CRITICAL"},
                        "message": "use the logger",
                        "pattern": "println(...)",
                    },
                    {
                        "id": "no-main",
                        "languages": ["go"],
                        "severity": "INFO",
                        "message": "main found",
                        "pattern": "func main() { ... }",
                    },
                ]
            }
        )
    )
    (source / "app").mkdir()
    (source / "app" / "main.go").write_text('package main\n\nfunc main() { println("hi") }\n')
    input = scan_input(source, ["app"], fail_on="CRITICAL", rules="custom.yml")
    err = await expect_error(acts, input)

    assert "no-println [CRITICAL] app/main.go:3: use the logger" in err.message
    assert "no-main" not in err.message  # LOW


# ---- bad input and failures ---------------------------------------------------------------


async def test_broken_rules_file_is_bad_input(acts: SemgrepActivities, source: Path) -> None:
    (source / "broken.yml").write_text(
        "rules:\n- id: broken\n  languages: [go]\n  severity: ERROR\n"
        "  message: m\n  pattern: 'func (( '\n"
    )
    err = await expect_error(acts, scan_input(source, ["svc"], rules="broken.yml"))

    assert err.type == "InvalidConfig"
    assert err.non_retryable
    assert "broken.yml" in err.message
    assert "Rule parse error" in err.message


@pytest.mark.parametrize(
    ("rules", "paths", "expected"),
    [
        ("policy/semgrep/missing.yml", ["svc"], "'policy/semgrep/missing.yml' not found"),
        ("", ["svc"], "semgrep_rules is empty"),
        (RULES, ["nope"], "'nope' does not exist"),
    ],
)
async def test_missing_rules_or_paths_are_bad_input(
    acts: SemgrepActivities, source: Path, rules: str, paths: list[str], expected: str
) -> None:
    err = await expect_error(acts, scan_input(source, paths, rules=rules))

    assert err.type == "InvalidConfig"
    assert err.non_retryable
    assert expected in err.message


async def test_semgrep_crash_is_retryable(settings: PlatformSettings, source: Path) -> None:
    broken = SemgrepActivities(settings, semgrep=str(shutil.which("false")))
    with pytest.raises(RuntimeError, match="semgrep exited with 1"):
        await scan(broken, scan_input(source, ["svc"]))


def test_severity_mapping() -> None:
    assert semgrep_severity("ERROR") == "HIGH"
    assert semgrep_severity("WARNING") == "MEDIUM"
    assert semgrep_severity("INFO") == "LOW"
    assert semgrep_severity("CRITICAL") == "CRITICAL"
    assert semgrep_severity("INVENTORY") == "UNKNOWN"
    assert semgrep_severity("INFO", {"severity": "high"}) == "HIGH"
    assert semgrep_severity("ERROR", {"severity": "bogus"}) == "HIGH"
