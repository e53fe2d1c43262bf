"""Canary analysis: query templates, classify, decide, and the built-in PromQL itself."""

from __future__ import annotations

import math
import shutil
import subprocess
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from temporalio import workflow
from temporalio.converter import DataConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from brewline.analysis import (
    BUILTIN_METRICS,
    ERROR,
    FAILED,
    INCONCLUSIVE,
    INGRESS_NGINX,
    NGINX_BUCKETS,
    NGINX_QUERIES,
    NGINX_REQUESTS,
    REQUEST_COUNT_QUERY,
    RUNNING,
    SUCCESSFUL,
    TRAEFIK,
    AnalysisOutcome,
    AnalysisSpec,
    Measurement,
    MetricSpec,
    builtin_query,
    classify,
    decide,
    leaf_service,
    query_vars,
    render_metric,
    render_query,
    request_count_query,
    router_of,
    template_placeholders,
)
from brewline.canary_config import validate_canary

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SUCCESS_RATE = BUILTIN_METRICS["request-success-rate"]
P99 = BUILTIN_METRICS["request-duration-p99"]
VARS = query_vars("production", "api-gateway", "v1.2.0", 5)


# ---- templates --------------------------------------------------------------------------


def test_render_query_fills_known_placeholders_and_leaves_promql_braces() -> None:
    query = render_query(
        'sum(rate(x{service="{canary}",env="{environment}"}[{interval}])) by (le)', **VARS
    )
    assert query == (
        'sum(rate(x{service="production-api-gateway-canary@file",env="production"}[5s])) by (le)'
    )


def test_query_vars_name_the_traefik_leaves() -> None:
    assert VARS == {
        "service": "api-gateway",
        "environment": "production",
        "version": "v1.2.0",
        "interval": "5s",
        "stable": "production-api-gateway-stable@file",
        "canary": "production-api-gateway-canary@file",
        "namespace": "production",  # the local platform has none: the environment
    }
    assert leaf_service("staging", "producer", "canary") == "staging-producer-canary@file"
    with pytest.raises(ValueError, match="track 'blue'"):
        leaf_service("staging", "producer", "blue")


def test_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \{cluster\}"):
        render_query('x{c="{cluster}"}', **VARS)


def test_missing_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"uses \{canary\} but no value was given"):
        render_query('x{service="{canary}"}', interval="5s")


def test_unknown_variable_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown query variable 'cluster'"):
        render_query("up", cluster="default")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("service", 'x"} or vector(1) #', "service 'x\"} or vector(1) #' is not allowed"),
        ("environment", "Prod", "environment 'Prod' is not allowed"),
        ("version", '1.0.0"}', "version '1.0.0\"}' is not allowed"),
        ("interval", "5s]) or vector(1", "is not a PromQL duration"),
        ("interval", "0s", "is not a PromQL duration"),
        ("canary", 'a@file",code="200', "is not a router service name"),
        ("stable", "", "is not a router service name"),
        ("canary", "api-gateway-canary.+", "is not a router service name"),
        ("namespace", 'prod",ingress=~".*', "is not a Kubernetes namespace"),
        ("namespace", "Prod", "is not a Kubernetes namespace"),
    ],
)
def test_values_that_could_change_the_query_are_refused(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError) as info:
        render_query("up", **{name: value})
    assert message in str(info.value)


def test_values_must_be_strings() -> None:
    with pytest.raises(ValueError, match="interval=5 must be a string"):
        render_query("up", interval=5)  # type: ignore[arg-type]


def test_builtins_use_only_known_placeholders_and_render() -> None:
    assert list(BUILTIN_METRICS) == [
        "request-success-rate",
        "request-duration-p99",
        "success-rate-vs-stable",
        "p99-vs-stable",
    ]
    for metric in BUILTIN_METRICS.values():
        rendered = render_metric(
            metric,
            environment="production",
            service="api-gateway",
            version="1.0.0",
            interval_seconds=5,
        )
        assert template_placeholders(rendered) == []
        assert 'service="production-api-gateway-canary@file"' in rendered
    assert (SUCCESS_RATE.condition, SUCCESS_RATE.threshold) == (">=", 0.99)
    assert (P99.condition, P99.threshold) == ("<=", 0.5)
    vs_stable = BUILTIN_METRICS["success-rate-vs-stable"]
    assert (vs_stable.condition, vs_stable.threshold) == (">=", -0.01)
    p99_ratio = BUILTIN_METRICS["p99-vs-stable"]
    assert (p99_ratio.condition, p99_ratio.threshold) == ("<=", 1.5)
    for comparison in (vs_stable, p99_ratio):
        assert template_placeholders(comparison.query) == ["canary", "interval", "stable"]


# ---- the built-in PromQL on Prometheus' own engine (promtool test rules) ---------------

SERIES = "traefik_service_requests_total"
BUCKETS = "traefik_service_request_duration_seconds_bucket"


def counter(leaf: str, code: str, per_minute: int, start: int = 0) -> dict[str, str]:
    return {
        "series": f'{SERIES}{{service="{leaf}@file",code="{code}",method="GET",protocol="http"}}',
        "values": f"{start}+{per_minute}x10",
    }


def histogram(leaf: str, per_minute: dict[str, int]) -> list[dict[str, str]]:
    """Cumulative buckets: `per_minute` maps le -> requests per minute at or below it."""
    return [
        {
            "series": f'{BUCKETS}{{service="{leaf}@file",le="{le}"}}',
            "values": f"0+{count}x10",
        }
        for le, count in per_minute.items()
    ]


def builtin(name: str, environment: str, service: str) -> str:
    return render_query(
        BUILTIN_METRICS[name].query,
        **query_vars(environment, service, "1.0.0", 300),  # 5 minute window over 1 m steps
    )


def expect(expr: str, value: float | None) -> dict[str, object]:
    """A promtool expectation: a single sample, NaN, or no sample at all (None)."""
    if value is None:
        return {"expr": expr, "eval_time": "10m", "exp_samples": []}
    if math.isnan(value):
        # promtool compares NaN with NaN as different: count the samples unequal to
        # themselves, which only NaN is.
        return {
            "expr": f"count(({expr}) != ({expr}))",
            "eval_time": "10m",
            "exp_samples": [{"labels": "{}", "value": 1}],
        }
    return {"expr": expr, "eval_time": "10m", "exp_samples": [{"labels": "{}", "value": value}]}


FAST = {"0.1": 60, "0.5": 60, "1": 60, "+Inf": 60}  # every request under 0.1 s
SLOW = {"0.1": 0, "0.5": 0, "1": 60, "+Inf": 60}  # every request between 0.5 s and 1 s


def test_builtin_queries_on_the_prometheus_engine(tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with the Debian prometheus package (make setup)"
    series = [
        # healthy: no 5xx series at all, as Traefik exports it
        counter("e-healthy-canary", "200", 60),
        counter("e-healthy-stable", "200", 60),
        *histogram("e-healthy-canary", FAST),
        *histogram("e-healthy-stable", FAST),
        # 10% errors on the canary, slow canary, healthy stable
        counter("e-bad-canary", "200", 54),
        counter("e-bad-canary", "500", 6),
        counter("e-bad-stable", "200", 60),
        *histogram("e-bad-canary", SLOW),
        *histogram("e-bad-stable", FAST),
        # nothing but 500s
        counter("e-down-canary", "500", 60),
        # had traffic once, none in the window: counters flat
        counter("e-idle-canary", "200", 0, start=42),
        *histogram("e-idle-canary", {"0.1": 0, "+Inf": 0}),
    ]
    tests = [
        expect(builtin("request-success-rate", "e", "healthy"), 1.0),
        expect(builtin("request-success-rate", "e", "bad"), 0.9),
        expect(builtin("request-success-rate", "e", "down"), 0.0),  # not "no data"
        expect(builtin("request-success-rate", "e", "idle"), math.nan),
        expect(builtin("request-success-rate", "e", "absent"), None),
        expect(builtin("success-rate-vs-stable", "e", "healthy"), 0.0),
        expect(builtin("success-rate-vs-stable", "e", "bad"), 0.9 - 1.0),  # float math
        expect(builtin("request-duration-p99", "e", "healthy"), 0.099),
        expect(builtin("request-duration-p99", "e", "bad"), 0.995),
        expect(builtin("request-duration-p99", "e", "idle"), math.nan),
        expect(builtin("request-duration-p99", "e", "absent"), None),
        expect(builtin("p99-vs-stable", "e", "healthy"), 1.0),
        expect(builtin("p99-vs-stable", "e", "bad"), 0.995 / 0.099),
        expect(render_query(REQUEST_COUNT_QUERY, **query_vars("e", "bad", "1.0.0", 300)), 300.0),
    ]
    test_file = tmp_path / "builtins_test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            }
        )
    )
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


# ---- classify -----------------------------------------------------------------------------


def test_classify_value_that_meets_the_condition_is_successful() -> None:
    m = classify(SUCCESS_RATE, 0.995, "", AT)
    assert m == Measurement(
        metric="request-success-rate",
        phase=SUCCESSFUL,
        value=0.995,
        threshold=0.99,
        condition=">=",
        at=AT,
        message="0.995 >= 0.99",
    )


def test_classify_value_that_misses_the_condition_fails() -> None:
    m = classify(SUCCESS_RATE, 0.81, "", AT)
    assert (m.phase, m.value, m.message) == (FAILED, 0.81, "0.81 is not >= 0.99")


@pytest.mark.parametrize(
    ("condition", "value", "phase"),
    [
        (">=", 0.5, SUCCESSFUL),
        (">=", 0.4999, FAILED),
        ("<=", 0.5, SUCCESSFUL),
        ("<=", 0.5001, FAILED),
        (">", 0.5, FAILED),
        (">", 0.5001, SUCCESSFUL),
        ("<", 0.5, FAILED),
        ("<", 0.4999, SUCCESSFUL),
    ],
)
def test_classify_conditions_at_the_threshold(condition: str, value: float, phase: str) -> None:
    spec = MetricSpec("m", "up", condition, 0.5)
    assert classify(spec, value).phase == phase


@pytest.mark.parametrize(
    ("value", "said"),
    [(None, "no series"), (math.nan, "nan"), (math.inf, "inf"), (-math.inf, "-inf")],
)
def test_classify_no_data_is_inconclusive(value: float | None, said: str) -> None:
    m = classify(P99, value, "", AT)
    assert m.phase == INCONCLUSIVE
    assert m.value is None
    assert m.message == f"no data (query answered {said})"


def test_classify_error_is_an_error_even_with_a_value() -> None:
    m = classify(SUCCESS_RATE, 1.0, "Prometheus at http://127.0.0.1:9090 is unreachable", AT)
    assert (m.phase, m.value) == (ERROR, None)
    assert m.message == "Prometheus at http://127.0.0.1:9090 is unreachable"


def test_classify_too_few_requests_is_inconclusive_and_keeps_the_value() -> None:
    m = classify(SUCCESS_RATE, 1.0, requests=7, min_requests=20)
    assert (m.phase, m.value) == (INCONCLUSIVE, 1.0)
    assert m.message.startswith(
        "only 7 requests reached the canary in the window; at least 20 needed (min_requests)"
    )
    # No answer to the request count is no requests.
    assert classify(SUCCESS_RATE, 1.0, requests=None, min_requests=20).phase == INCONCLUSIVE
    assert classify(SUCCESS_RATE, 1.0, requests=math.nan, min_requests=20).phase == INCONCLUSIVE
    # Exactly enough counts; min_requests 0 does not look at requests.
    assert classify(SUCCESS_RATE, 1.0, requests=20, min_requests=20).phase == SUCCESSFUL
    assert classify(SUCCESS_RATE, 1.0).phase == SUCCESSFUL


def test_classify_refuses_an_unknown_condition() -> None:
    with pytest.raises(ValueError, match="condition '==' is not one of >=, <=, >, <"):
        classify(MetricSpec("m", "up", "==", 1.0), 1.0)


# ---- decide -------------------------------------------------------------------------------


def spec(**limits: int) -> AnalysisSpec:
    fields: dict[str, int] = {
        "count": 3,
        "failure_limit": 0,
        "inconclusive_limit": 0,
        "consecutive_error_limit": 0,
    }
    fields.update(limits)
    return AnalysisSpec(metrics=[SUCCESS_RATE], **fields)


def ok(metric: MetricSpec = SUCCESS_RATE, value: float = 1.0) -> Measurement:
    measurement = classify(metric, value, "", AT)
    assert measurement.phase == SUCCESSFUL
    return measurement


def bad(value: float = 0.5, metric: MetricSpec = SUCCESS_RATE) -> Measurement:
    measurement = classify(metric, value, "", AT)
    assert measurement.phase == FAILED
    return measurement


def nodata(metric: MetricSpec = SUCCESS_RATE) -> Measurement:
    return classify(metric, None, "", AT)


def err(metric: MetricSpec = SUCCESS_RATE, text: str = "connection refused") -> Measurement:
    return classify(metric, None, text, AT)


def test_no_measurements_is_running() -> None:
    outcome = decide(spec(), [])
    assert outcome.phase == RUNNING
    assert not outcome.finished
    assert outcome.reason == "request-success-rate: 0 of 3 measurements with data"


def test_count_successful_measurements_is_successful() -> None:
    assert decide(spec(), [ok(), ok()]).phase == RUNNING
    outcome = decide(spec(), [ok(), ok(), ok(value=0.995)])
    assert outcome.phase == SUCCESSFUL
    assert outcome.finished
    assert outcome.reason == (
        "request-success-rate: 3 measurements with data, last 0.995 (condition >= 0.99)"
    )
    (summary,) = outcome.metrics
    assert (summary.count, summary.successful, summary.last_value) == (3, 3, 0.995)


def test_failures_at_the_limit_are_tolerated_and_one_more_fails() -> None:
    at_limit = decide(spec(failure_limit=2), [bad(0.81), ok(), bad(0.79)])
    assert at_limit.phase == SUCCESSFUL
    assert "2 failed within failure_limit" in at_limit.reason
    outcome = decide(spec(failure_limit=2), [bad(0.81), ok(), bad(0.79), bad(0.8)])
    assert outcome.phase == FAILED
    assert outcome.reason == (
        "request-success-rate: 3 failed measurements (0.81, 0.79, 0.8; condition >= 0.99) "
        "exceeds failure_limit 2"
    )


def test_one_failure_over_a_zero_limit_fails_at_once() -> None:
    outcome = decide(spec(count=10), [ok(), bad(0.9)])
    assert outcome.phase == FAILED
    assert outcome.reason == (
        "request-success-rate: 1 failed measurement (0.9; condition >= 0.99) "
        "exceeds failure_limit 0"
    )


def test_inconclusive_at_the_limit_runs_on_and_one_more_is_inconclusive() -> None:
    assert decide(spec(inconclusive_limit=2), [nodata(), ok(), nodata()]).phase == RUNNING
    outcome = decide(spec(inconclusive_limit=2), [nodata(), ok(), nodata(), nodata()])
    assert outcome.phase == INCONCLUSIVE
    assert outcome.reason == (
        "request-success-rate: 3 inconclusive measurements (..., no data (query answered "
        "no series), no data (query answered no series)) exceeds inconclusive_limit 2"
    )


def test_consecutive_errors_at_the_limit_run_on_and_one_more_is_an_error() -> None:
    assert decide(spec(consecutive_error_limit=3), [ok(), err(), err(), err()]).phase == RUNNING
    outcome = decide(spec(consecutive_error_limit=3), [ok(), err(), err(), err(), err()])
    assert outcome.phase == ERROR
    assert outcome.reason == (
        "request-success-rate: 4 consecutive errors (last: connection refused) "
        "exceeds consecutive_error_limit 3"
    )


def test_a_success_resets_the_error_run() -> None:
    measurements = [err(), err(), err(), ok(), err(), err(), err(), ok()]
    outcome = decide(spec(consecutive_error_limit=3, count=5), measurements)
    assert outcome.phase == RUNNING  # 6 errors in all, never more than 3 in a row
    (summary,) = outcome.metrics
    assert (summary.errors, summary.consecutive_errors, summary.count) == (6, 3, 2)
    assert outcome.reason == "request-success-rate: 2 of 5 measurements with data (6 errors)"


def test_an_error_run_that_ended_still_counts() -> None:
    """decide judges the whole history, so a late call still sees a run over the limit."""
    outcome = decide(spec(consecutive_error_limit=1, count=9), [err(), err(), ok(), ok()])
    assert outcome.phase == ERROR


def test_errors_never_count_towards_count() -> None:
    outcome = decide(spec(count=2, consecutive_error_limit=5), [err(), ok(), err(), err()])
    assert outcome.phase == RUNNING
    assert outcome.metrics[0].count == 1


def test_no_data_never_passes_even_after_count_measurements() -> None:
    lenient = spec(count=3, inconclusive_limit=100, consecutive_error_limit=100)
    assert decide(lenient, [nodata(), nodata(), nodata()]).phase == RUNNING
    assert decide(lenient, [ok(), nodata(), ok(), nodata()]).phase == RUNNING
    assert decide(lenient, [ok(), nodata(), ok(), nodata(), ok()]).phase == SUCCESSFUL
    assert decide(lenient, [err(), nodata(), err(), nodata(), err(), nodata()]).phase == RUNNING


@given(
    st.lists(st.sampled_from([INCONCLUSIVE, ERROR, SUCCESSFUL, FAILED]), max_size=30),
    st.integers(1, 5),
)
def test_never_successful_without_count_measurements_with_data(
    phases: list[str], count: int
) -> None:
    make = {INCONCLUSIVE: nodata, ERROR: err, SUCCESSFUL: ok, FAILED: bad}
    lenient = spec(
        count=count, failure_limit=100, inconclusive_limit=100, consecutive_error_limit=100
    )
    outcome = decide(lenient, [make[phase]() for phase in phases])
    with_data = sum(phase in (SUCCESSFUL, FAILED) for phase in phases)
    assert (outcome.phase == SUCCESSFUL) == (with_data >= count)


def test_every_metric_needs_count_measurements() -> None:
    both = AnalysisSpec(metrics=[SUCCESS_RATE, P99], count=2, inconclusive_limit=5)
    measurements = [ok(), ok(P99, 0.1), ok(), nodata(P99)]
    outcome = decide(both, measurements)
    assert outcome.phase == RUNNING
    assert [s.phase for s in outcome.metrics] == [SUCCESSFUL, RUNNING]
    assert outcome.reason == (
        "request-success-rate: 2 measurements with data, last 1 (condition >= 0.99); "
        "request-duration-p99: 1 of 2 measurements with data (1 inconclusive)"
    )
    assert decide(both, [*measurements, ok(P99, 0.2)]).phase == SUCCESSFUL


def test_the_worst_metric_decides_failed_before_error_before_inconclusive() -> None:
    limits = {"count": 5, "failure_limit": 0, "inconclusive_limit": 0, "consecutive_error_limit": 0}
    a = MetricSpec("a", "up", ">=", 1.0)
    b = MetricSpec("b", "up", ">=", 1.0)
    c = MetricSpec("c", "up", ">=", 1.0)
    three = AnalysisSpec(metrics=[a, b, c], **limits)
    outcome = decide(three, [nodata(a), err(b), bad(0.0, c)])
    assert outcome.phase == FAILED
    assert outcome.reason.startswith("c: 1 failed measurement")
    assert decide(three, [nodata(a), err(b), ok(c)]).phase == ERROR
    assert decide(three, [nodata(a), ok(b), ok(c)]).phase == INCONCLUSIVE
    two_failed = decide(three, [bad(0.1, a), bad(0.2, b)])
    assert two_failed.reason == (
        "a: 1 failed measurement (0.1; condition >= 1) exceeds failure_limit 0; "
        "b: 1 failed measurement (0.2; condition >= 1) exceeds failure_limit 0"
    )


def test_within_one_metric_failed_comes_before_inconclusive_before_error() -> None:
    s = spec(count=9)
    assert decide(s, [err(), err(), nodata(), nodata(), bad()]).phase == FAILED
    assert decide(s, [err(), err(), nodata(), nodata()]).phase == INCONCLUSIVE


def test_long_value_lists_keep_the_last_five() -> None:
    values = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    outcome = decide(spec(count=9, failure_limit=6), [bad(v) for v in values])
    assert outcome.reason.startswith(
        "request-success-rate: 7 failed measurements (..., 0.3, 0.4, 0.5, 0.6, 0.7;"
    )


def test_an_analysis_without_metrics_is_an_error() -> None:
    outcome = decide(AnalysisSpec(metrics=[]), [])
    assert outcome.phase == ERROR
    assert "no metrics" in outcome.reason


def test_measurements_of_other_metrics_are_a_bug() -> None:
    with pytest.raises(ValueError, match="measurements of other are not metrics"):
        decide(spec(), [ok(MetricSpec("other", "up", ">=", 0.0))])
    with pytest.raises(ValueError, match="has phase 'Pending'"):
        decide(spec(), [replace(ok(), phase="Pending")])


# ---- through Temporal ---------------------------------------------------------------------


async def test_the_dataclasses_travel_through_temporal() -> None:
    converter = DataConverter.default
    outcome = decide(spec(), [ok(), nodata(), err(), bad(0.5)])
    values: list[object] = [
        AnalysisSpec(metrics=list(BUILTIN_METRICS.values())),
        [ok(), nodata(), err()],
        outcome,
    ]
    payloads = await converter.encode(values)
    decoded = await converter.decode(payloads, [AnalysisSpec, list[Measurement], AnalysisOutcome])
    assert decoded == values


# ---- inside the workflow sandbox ----------------------------------------------------------


@workflow.defn(sandboxed=True)
class JudgeInTheSandbox:
    """Reads the canary config, renders, classifies and decides as the canary workflow
    will, with brewline's modules imported afresh inside the sandbox."""

    @workflow.run
    async def run(self, values: list[float | None]) -> AnalysisOutcome:
        problems: list[str] = []
        config = validate_canary({"analysis": {"count": 2}}, problems)
        assert config is not None, problems
        analysis = replace(config.analysis, metrics=config.analysis.metrics[:1])
        query = render_metric(
            analysis.metrics[0],
            environment="production",
            service="api-gateway",
            version="1.0.0",
            interval_seconds=analysis.interval_seconds,
        )
        assert "production-api-gateway-canary@file" in query
        measurements = [
            classify(analysis.metrics[0], value, "", workflow.now()) for value in values
        ]
        return decide(analysis, measurements)


async def test_the_workflow_sandbox_runs_the_analysis(time_env: WorkflowEnvironment) -> None:
    task_queue = f"analysis-{uuid.uuid4()}"
    # The test module's own tools pass through; brewline's modules do not, so the sandbox
    # imports and checks them as it will in the worker.
    restrictions = SandboxRestrictions.default.with_passthrough_modules(
        "hypothesis", "pytest", "_pytest"
    )
    async with Worker(
        time_env.client,
        task_queue=task_queue,
        workflows=[JudgeInTheSandbox],
        workflow_runner=SandboxedWorkflowRunner(restrictions=restrictions),
    ):
        outcome = await time_env.client.execute_workflow(
            JudgeInTheSandbox.run,
            [1.0, None, 0.995],
            id=f"analysis-{uuid.uuid4()}",
            task_queue=task_queue,
        )
    assert outcome.phase == SUCCESSFUL
    assert [m.inconclusive for m in outcome.metrics] == [1]


# ---- ingress-nginx (target kubernetes) ----------------------------------------------------

NGINX_VARS = query_vars(
    "production", "api-gateway", "1.0.0", 5, router=INGRESS_NGINX, namespace="go-coffee"
)


def test_query_vars_name_the_kubernetes_services_for_ingress_nginx() -> None:
    assert NGINX_VARS == {
        "service": "api-gateway",
        "environment": "production",
        "version": "1.0.0",
        "interval": "5s",
        "stable": "api-gateway",  # the stable Service and Ingress (helm/go-coffee)
        "canary": "api-gateway-canary",  # the canary Service and Ingress
        "namespace": "go-coffee",
    }
    assert router_of("local") == TRAEFIK and router_of("kubernetes") == INGRESS_NGINX
    with pytest.raises(ValueError, match="need the Kubernetes namespace"):
        query_vars("production", "api-gateway", "1.0.0", 5, router=INGRESS_NGINX)
    with pytest.raises(ValueError, match="router 'envoy' is not one of traefik, ingress-nginx"):
        query_vars("production", "api-gateway", "1.0.0", 5, router="envoy")
    with pytest.raises(ValueError, match="target 'mars' has no router"):
        router_of("mars")


def test_builtins_have_an_ingress_nginx_template_on_the_stable_ingress() -> None:
    assert set(NGINX_QUERIES) == set(BUILTIN_METRICS)
    for name, metric in BUILTIN_METRICS.items():
        rendered = render_metric(
            metric,
            environment="production",
            service="api-gateway",
            version="1.0.0",
            interval_seconds=5,
            router=INGRESS_NGINX,
            namespace="go-coffee",
        )
        assert template_placeholders(rendered) == []
        assert "traefik" not in rendered
        # canary requests: under the stable Ingress, with the canary upstream's name
        canary = 'ingress="api-gateway",canary=~"go-coffee-api-gateway-canary-.+"'
        assert f'namespace="go-coffee",{canary}' in rendered, name
        assert builtin_query(name, TRAEFIK) == metric.query
        assert builtin_query(name, INGRESS_NGINX) == NGINX_QUERIES[name]
    for comparison in ("success-rate-vs-stable", "p99-vs-stable"):
        assert 'ingress="api-gateway",canary=""' in render_query(
            NGINX_QUERIES[comparison], **NGINX_VARS
        )
    with pytest.raises(ValueError, match="'apdex' is not a built-in metric"):
        builtin_query("apdex", INGRESS_NGINX)


def test_a_custom_metric_keeps_its_query_with_the_routers_names() -> None:
    custom = MetricSpec("queue", 'max(q{ns="{namespace}",svc="{canary}"}[{interval}])', "<=", 1)
    rendered = render_metric(
        custom,
        environment="production",
        service="api-gateway",
        version="1.0.0",
        interval_seconds=5,
        router=INGRESS_NGINX,
        namespace="go-coffee",
    )
    assert rendered == 'max(q{ns="go-coffee",svc="api-gateway-canary"}[5s])'
    local = render_metric(
        custom, environment="production", service="api-gateway", version="1.0.0", interval_seconds=5
    )
    assert local == 'max(q{ns="production",svc="production-api-gateway-canary@file"}[5s])'


def nginx_counter(
    ingress: str, canary: str, status: str, per_minute: int, start: int = 0
) -> dict[str, str]:
    """A series as ingress-nginx exports it (controller labels and the `service` label,
    which names the stable Service even for canary requests, included)."""
    return {
        "series": (
            f'{NGINX_REQUESTS}{{controller_class="k8s.io/ingress-nginx",'
            'controller_namespace="ingress-nginx",controller_pod="ingress-nginx-controller-1",'
            f'namespace="e",ingress="{ingress}",service="{ingress}",canary="{canary}",'
            f'status="{status}",method="GET",path="/",host="go-coffee.example.com"}}'
        ),
        "values": f"{start}+{per_minute}x10",
    }


def nginx_histogram(ingress: str, canary: str, per_minute: dict[str, int]) -> list[dict[str, str]]:
    return [
        {
            "series": (
                f'{NGINX_BUCKETS}{{controller_pod="ingress-nginx-controller-1",namespace="e",'
                f'ingress="{ingress}",service="{ingress}",canary="{canary}",status="200",'
                f'method="GET",path="/",le="{le}"}}'
            ),
            "values": f"0+{count}x10",
        }
        for le, count in per_minute.items()
    ]


def nginx_builtin(name: str, service: str) -> str:
    return render_query(
        NGINX_QUERIES[name],
        **query_vars("e", service, "1.0.0", 300, router=INGRESS_NGINX, namespace="e"),
    )


def test_nginx_builtin_queries_on_the_prometheus_engine(tmp_path: Path) -> None:
    """The ingress-nginx templates on Prometheus's own engine (promtool), with series
    shaped as ingress-nginx exports them: the canary under the stable Ingress name."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with the Debian prometheus package (make setup)"
    series = [
        # healthy: the canary's requests carry canary="e-healthy-canary-8080"
        nginx_counter("healthy", "e-healthy-canary-8080", "200", 60),
        nginx_counter("healthy", "", "200", 60),
        *nginx_histogram("healthy", "e-healthy-canary-8080", FAST),
        *nginx_histogram("healthy", "", FAST),
        # 10% errors and slow on the canary; stable has a few 404s (not errors)
        nginx_counter("bad", "e-bad-canary-8080", "200", 54),
        nginx_counter("bad", "e-bad-canary-8080", "503", 6),
        nginx_counter("bad", "", "200", 50),
        nginx_counter("bad", "", "404", 10),
        *nginx_histogram("bad", "e-bad-canary-8080", SLOW),
        *nginx_histogram("bad", "", FAST),
        # nothing but 500s from the canary
        nginx_counter("down", "e-down-canary-8080", "500", 60),
        # another Ingress's canary: never counted for "bad"
        nginx_counter("bad-other", "e-bad-canary-8080", "500", 600),
        # canary idle in the window
        nginx_counter("idle", "e-idle-canary-8080", "200", 0, start=42),
    ]
    tests = [
        expect(nginx_builtin("request-success-rate", "healthy"), 1.0),
        expect(nginx_builtin("request-success-rate", "bad"), 0.9),
        expect(nginx_builtin("request-success-rate", "down"), 0.0),  # not "no data"
        expect(nginx_builtin("request-success-rate", "idle"), math.nan),
        expect(nginx_builtin("request-success-rate", "absent"), None),
        expect(nginx_builtin("success-rate-vs-stable", "healthy"), 0.0),
        expect(nginx_builtin("success-rate-vs-stable", "bad"), 0.9 - 1.0),
        expect(nginx_builtin("request-duration-p99", "healthy"), 0.099),
        expect(nginx_builtin("request-duration-p99", "bad"), 0.995),
        expect(nginx_builtin("request-duration-p99", "absent"), None),
        expect(nginx_builtin("p99-vs-stable", "healthy"), 1.0),
        expect(nginx_builtin("p99-vs-stable", "bad"), 0.995 / 0.099),
        expect(
            render_query(
                request_count_query(INGRESS_NGINX),
                **query_vars("e", "bad", "1.0.0", 300, router=INGRESS_NGINX, namespace="e"),
            ),
            300.0,  # the canary's 60 a minute over 5 minutes, stable's not counted
        ),
    ]
    test_file = tmp_path / "nginx_builtins_test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "evaluation_interval": "1m",
                "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}],
            }
        )
    )
    done = subprocess.run(
        [promtool, "test", "rules", str(test_file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
