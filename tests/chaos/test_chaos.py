"""The chaos suite's pure parts: the seeded plan, where a release is, the platform's
records on canned inputs, the comparison and the summary line. The suite itself runs
with `make chaos` (real releases, far too long for `make test`)."""

from __future__ import annotations

import json

import pytest
from temporalio.client import WorkflowHistory

from brewline.platform import REPO_ROOT
from local.chaos import (
    CATEGORIES,
    KILL_POINTS,
    MIN_TOTAL_KILLS,
    Difference,
    Observation,
    ReleaseRecord,
    compare,
    container_ports,
    container_starts,
    decisions,
    describe_plan,
    disturbed_deadline,
    history_decisions,
    manifest_pushes,
    matches,
    plan_runs,
    release_line,
    release_sequence,
    route_versions,
    summary_line,
    terraform_state,
)

RELEASES = release_sequence(4)


# ---- the plan -------------------------------------------------------------------------
def test_the_default_sequence_has_one_release_of_each_kind() -> None:
    assert [(r.version, r.kind) for r in RELEASES] == [
        ("1.0.0", "baseline"),
        ("1.0.1", "canary"),
        ("1.0.2", "faulty"),
        ("1.0.3", "rejected"),
    ]
    assert [(r.version, r.kind) for r in release_sequence(7)[4:]] == [
        ("1.0.4", "canary"),
        ("1.0.5", "faulty"),
        ("1.0.6", "rejected"),
    ]
    assert RELEASES[2].container_env == ["--container-env", "api-gateway:FAULT_ERROR_RATE=0.2"]
    assert not RELEASES[3].approve


def test_the_same_seed_gives_the_same_plan_and_another_seed_another() -> None:
    assert plan_runs(42, 2, RELEASES) == plan_runs(42, 2, RELEASES)
    assert plan_runs(42, 2, RELEASES) != plan_runs(43, 2, RELEASES)


@pytest.mark.parametrize("seed", [1, 2, 3, 99, 12345])
def test_the_default_runs_plan_30_kills_covering_every_stage_and_one_restart_each(
    seed: int,
) -> None:
    plans = plan_runs(seed, 2, RELEASES)
    kills = [k for p in plans for k in p.kills]
    assert len(kills) >= MIN_TOTAL_KILLS
    for plan in plans:
        assert {KILL_POINTS[k.point].category for k in plan.kills} == set(CATEGORIES)
        assert plan.server_restart is not None
        restart = (plan.server_restart.release, plan.server_restart.point)
        assert restart not in {(k.release, k.point) for k in plan.kills}
        assert plan.duplicate_approvals, "a duplicate decision once in a while"
        for kill in plan.kills:
            # only points the release really passes through; no point twice
            assert kill.point in RELEASES[kill.release].points
            assert 0 <= kill.jitter <= 0.5 and 0.5 <= kill.restart_delay <= 3.0
        assert len({(k.release, k.point) for k in plan.kills}) == len(plan.kills)


def test_a_small_run_respects_the_kill_count_asked_for() -> None:
    [plan] = plan_runs(5, 1, RELEASES[:1], kills_per_run=3)
    assert len(plan.kills) == 3
    # one release has 7 points: at most 6 kills, so one is left for the server restart
    [full] = plan_runs(5, 1, RELEASES[:1], kills_per_run=50)
    assert len(full.kills) == 6 and full.server_restart is not None


def test_the_printed_plan_names_every_kill_and_the_restart() -> None:
    plans = plan_runs(7, 1, RELEASES)
    text = describe_plan(plans, RELEASES)
    assert text.count("kill at ") == len(plans[0].kills)
    assert "Temporal restart at " in text
    assert text.endswith(f"{len(plans[0].kills)} kills planned over 1 run(s)")


# ---- where a release is ---------------------------------------------------------------
def test_infra_and_build_match_only_while_their_tool_runs() -> None:
    applying = Observation(stage="infra", activities=frozenset({"terraform_apply"}))
    assert not matches("infra", applying)  # still in terraform init / show
    applying.processes = (("/usr/bin/terraform", "apply", "-no-color", "plan.tfplan"),)
    assert matches("infra", applying)
    building = Observation(stage="build", activities=frozenset({"build_image"}))
    building.processes = (("/usr/bin/go", "build"),)
    assert not matches("build", building)
    building.processes = (("/usr/bin/buildah", "--root", "x", "push", "tag"),)
    assert matches("build", building)


def test_deploy_points_tell_the_environments_apart() -> None:
    staging = Observation(stage="deploy-staging", activities=frozenset({"deploy_service"}))
    assert matches("deploy-staging", staging) and not matches("deploy-production", staging)


def test_canary_points_follow_the_child_workflow() -> None:
    seen = Observation(stage="deploy-production", canary_phase="progressing")
    assert not matches("set-weight", seen)
    seen.set_weight_pending = True
    assert matches("set-weight", seen)
    assert matches("analysis", Observation(stage="deploy-production", canary_phase="analysing"))
    assert matches("promote", Observation(canary_phase="promoting"))
    assert matches("rollback", Observation(canary_activities=frozenset({"rollback_canary"})))
    with pytest.raises(ValueError, match="unknown kill point 'nowhere'"):
        matches("nowhere", seen)


def test_a_point_is_passed_once_the_release_is_further() -> None:
    assert Observation(stage="build").position > KILL_POINTS["infra"].position
    canary = Observation(stage="deploy-production", canary_phase="analysing")
    assert canary.position == KILL_POINTS["set-weight"].position  # a later step may set one
    assert Observation(stage="deploy-production", canary_phase="promoting").position > (
        KILL_POINTS["analysis"].position
    )
    assert Observation(state="closed").position > KILL_POINTS["restore"].position


# ---- the platform's records -----------------------------------------------------------
def _event(status: str, version: str, port: str, track: str = "stable") -> str:
    return json.dumps(
        {
            "Name": f"brewline-production-api-gateway-{version}",
            "Status": status,
            "Type": "container",
            "Attributes": {
                "brewline.managed": "true",
                "brewline.environment": "production",
                "brewline.service": "api-gateway",
                "brewline.track": track,
                "brewline.version": version,
                "brewline.port": port,
            },
        }
    )


def test_container_starts_count_start_events_of_managed_containers() -> None:
    lines = [
        _event("create", "1.0.0", "4000"),
        _event("start", "1.0.0", "4000"),
        _event("start", "1.0.1", "4001", "canary"),
        _event("start", "1.0.1", "4002"),
        _event("start", "1.0.1", "4003"),  # a second start of the same version
        json.dumps({"Status": "start", "Attributes": {"other": "x"}}),
        "not json",
    ]
    assert container_starts(lines) == {
        "production/api-gateway stable 1.0.0": 1,
        "production/api-gateway canary 1.0.1": 1,
        "production/api-gateway stable 1.0.1": 2,
    }
    assert container_ports(lines) == {
        "4000": "1.0.0",
        "4001": "1.0.1",
        "4002": "1.0.1",
        "4003": "1.0.1",
    }


def test_manifest_pushes_count_successful_puts_from_the_registry_log() -> None:
    put = (
        'time="2026-11-26T08:59:32Z" level=info msg="response completed" '
        "http.request.method=PUT http.request.uri=/v2/go-coffee/api-gateway/manifests/{tag} "
        "http.response.status={status}"
    )
    lines = [
        put.format(tag="1.0.0", status=201),
        put.format(tag="1.0.0", status=201),
        put.format(tag="1.0.1", status=500),
        'time="x" level=info msg="response completed" http.request.method=GET '
        "http.request.uri=/v2/go-coffee/api-gateway/manifests/1.0.1 http.response.status=200",
        '127.0.0.1 - - [26/Nov/2026] "PUT /v2/go-coffee/api-gateway/manifests/1.0.0" 201 0',
    ]
    assert manifest_pushes(lines) == {"go-coffee/api-gateway:1.0.0": 2}


def test_terraform_state_reads_serial_resources_and_the_release_version() -> None:
    document = {
        "serial": 7,
        "resources": [
            {
                "mode": "managed",
                "type": "terraform_data",
                "name": "release",
                "instances": [{"attributes": {"input": {"value": {"version": "1.0.1"}}}}],
            },
            {
                "mode": "managed",
                "module": "module.ecr",
                "type": "aws_ecr_repository",
                "name": "this",
                "instances": [{"index_key": "api-gateway", "attributes": {}}],
            },
            {"mode": "data", "type": "aws_region", "name": "current", "instances": [{}]},
        ],
    }
    state = terraform_state(document)
    assert state.serial == 7 and state.release_version == "1.0.1"
    assert state.resources == (
        'module.ecr.aws_ecr_repository.this["api-gateway"]',
        "terraform_data.release",
    )
    assert terraform_state(None).serial == 0


def test_route_versions_name_servers_by_version_and_collapse_repeats() -> None:
    ports = {"4000": "1.0.0", "4001": "1.0.1"}
    a, b = "http://127.0.0.1:4000", "http://127.0.0.1:4001"
    changes = [
        ("route-production-api-gateway", (a, "", 0)),
        ("route-production-api-gateway", (a, b, 0)),
        ("route-production-api-gateway", (a, b, 10)),
        ("route-production-api-gateway", (a, b, 10)),
        ("route-production-api-gateway", (b, "", 0)),
        ("route-staging-api-gateway", None),
    ]
    assert route_versions(changes, ports) == {
        "route-production-api-gateway": [
            "1.0.0|-@0",
            "1.0.0|1.0.1@0",
            "1.0.0|1.0.1@10",
            "1.0.1|-@0",
        ],
        "route-staging-api-gateway": ["removed"],
    }


def test_decisions_count_accepted_updates_and_decision_signals_only() -> None:
    update = "workflow_execution_update_accepted_event_attributes"
    signal = "workflow_execution_signaled_event_attributes"
    assert (
        decisions([(update, "decide"), (signal, "approve"), (update, "other"), (signal, "x")]) == 2
    )


@pytest.mark.parametrize(
    ("history", "accepted"),
    [("release-e2e-happy-path", 1), ("release-rejected", 1), ("release-tests-failed", 0)],
)
def test_decisions_of_recorded_histories(history: str, accepted: int) -> None:
    path = REPO_ROOT / "tests" / "histories" / f"{history}.json"
    events = WorkflowHistory.from_json(history, path.read_text()).events
    assert history_decisions(events) == accepted


# ---- comparison and summary -----------------------------------------------------------
def _record(**changes: object) -> ReleaseRecord:
    record = ReleaseRecord(
        "1.0.1",
        "canary",
        finished=True,
        state="succeeded",
        stage="deploy-production",
        stages={"test": "succeeded"},
        canaries={"production/api-gateway": "promoted"},
        deployments={"production/api-gateway": "1.0.1"},
        containers={"production/api-gateway canary 1.0.1": 1},
        pushes={"go-coffee/api-gateway:1.0.1": 1},
        terraform_applies=1,
        terraform_resources=("terraform_data.release",),
        terraform_version="1.0.1",
        routes={"route-production-api-gateway": ["1.0.0|-@0", "1.0.0|1.0.1@10", "1.0.1|-@0"]},
        decisions=1,
    )
    for name, value in changes.items():
        setattr(record, name, value)
    return record


def test_identical_records_have_no_difference() -> None:
    assert compare(_record(), _record(kills=["test"], notes=["x"])) == []


def test_more_side_effects_are_duplicated_fewer_are_lost() -> None:
    got = _record(
        containers={"production/api-gateway canary 1.0.1": 2},
        pushes={},
        terraform_applies=2,
        decisions=0,
    )
    diffs = compare(_record(), got)
    assert sorted((d.kind, d.what.split(":")[0]) for d in diffs) == [
        ("duplicated", "Terraform applies (state serial increments) state"),
        ("duplicated", "container starts production/api-gateway canary 1.0.1"),
        ("lost", "accepted decisions gate"),
        ("lost", "manifest pushes go-coffee/api-gateway"),
    ]


def test_a_route_changed_more_often_is_duplicated_and_a_final_state_is_different() -> None:
    routes = {
        "route-production-api-gateway": [
            "1.0.0|-@0",
            "1.0.0|1.0.1@10",
            "1.0.0|1.0.1@0",
            "1.0.0|1.0.1@10",
            "1.0.1|-@0",
        ]
    }
    diffs = compare(_record(), _record(routes=routes, state="failed", digest_problems=["bad"]))
    assert [d.kind for d in diffs] == ["different", "different", "duplicated"]
    assert "state: 'failed', reference 'succeeded'" in diffs[0].what
    assert diffs[1].what == "bad"


def test_an_unfinished_release_is_lost() -> None:
    assert compare(_record(), _record(finished=False)) == [
        Difference("lost", "1.0.1 (canary)", "the release did not finish")
    ]


def test_the_summary_line_is_exactly_the_issues() -> None:
    diffs = [
        Difference("lost", "r", "a"),
        Difference("duplicated", "r", "b"),
        Difference("duplicated", "r", "c"),
        Difference("different", "r", "d"),
    ]
    assert (
        summary_line(8, 31, 2, [])
        == "8 releases, 31 kills, 2 server restarts, 0 lost, 0 duplicated"
    )
    assert (
        summary_line(8, 31, 2, diffs)
        == "8 releases, 31 kills, 2 server restarts, 1 lost, 2 duplicated"
    )


def test_a_disturbed_release_gets_time_per_kill_and_restart_then_counts_as_stuck() -> None:
    assert disturbed_deadline(100.0, 0, 0) == 700.0
    assert disturbed_deadline(100.0, 4, 1) == 100.0 + 4 * 150 + 180 + 600


def test_the_release_line_says_what_happened() -> None:
    line = release_line(1, _record(), _record(kills=["test", "promote"], missed=["analysis"]), 0)
    assert line == (
        "run 1 1.0.1 canary: succeeded at deploy-production (reference succeeded at "
        "deploy-production); killed at test, promote; missed analysis; OK"
    )
