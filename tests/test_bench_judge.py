"""The judge benchmark: the peers' rules on hand-made windows, its samplers, and a quick run."""

from __future__ import annotations

import json
import math
import random
import statistics
from pathlib import Path

import pytest

from bench import judge as bench
from bench.peers import (
    HIGH,
    LOW,
    NODATA,
    PASS,
    ArgoRule,
    FlaggerRule,
    KayentaRule,
    TrafficWindow,
    classify_metric,
    histogram_quantile,
    interval_rank,
    kayenta_score,
    mann_whitney,
)
from brewline.analysis import FAILED, INCONCLUSIVE, SUCCESSFUL

W = 5.0  # seconds a window
PER_MINUTE = 12  # windows a minute


def windows(n: int, requests: int, errors: int, stable_errors: int = 0) -> list[TrafficWindow]:
    return [TrafficWindow(requests, errors, requests, stable_errors) for _ in range(n)]


def minutes(*failing: bool) -> list[TrafficWindow]:
    """One minute of windows per flag: 5% errors (fails a 99% check) or none."""
    out: list[TrafficWindow] = []
    for bad in failing:
        out += windows(PER_MINUTE, 100, 5 if bad else 0)
    return out


# --------------------------------------------------------------------------------------
# Flagger
# --------------------------------------------------------------------------------------


def test_flagger_rolls_back_at_the_fifth_failed_check() -> None:
    decision = FlaggerRule().decide(minutes(*[True] * 10), W)
    assert decision.phase == FAILED
    assert decision.windows == 5 * PER_MINUTE  # the 5th check, at 5 minutes
    assert "5 failed checks" in decision.reason


def test_flagger_failed_checks_are_cumulative_not_consecutive() -> None:
    # fail, pass, fail, pass, fail, fail, fail: 2 passes never promote, the 5th failure
    # is the 7th check.
    series = minutes(True, False, True, False, True, True, True, False)
    decision = FlaggerRule().decide(series, W)
    assert (decision.phase, decision.windows) == (FAILED, 7 * PER_MINUTE)
    assert FlaggerRule().failed_before_promotion(series, W) == 5


def test_flagger_promotes_after_five_passed_checks_and_four_failures_do_not_stop_it() -> None:
    series = minutes(True, False, True, False, True, False, True, False, False)
    decision = FlaggerRule().decide(series, W)
    assert (decision.phase, decision.windows) == (SUCCESSFUL, 9 * PER_MINUTE)
    assert FlaggerRule().failed_before_promotion(series, W) == 4


def test_flagger_counts_an_idle_canary_as_failed_checks() -> None:
    decision = FlaggerRule().decide(windows(10 * PER_MINUTE, 0, 0), W)
    assert (decision.phase, decision.windows) == (FAILED, 5 * PER_MINUTE)
    assert "no values found" in decision.reason


def test_flagger_request_duration_check_reads_the_p99_of_the_interval() -> None:
    slow = [0] * 7 + [100, 0, 0, 0, 0]  # every request in (0.5, 1] s: p99 near 1 s
    series = [TrafficWindow(100, 0, 100, 0, tuple(slow), tuple(slow))] * (5 * PER_MINUTE)
    assert FlaggerRule().decide(series, W).phase == FAILED
    assert FlaggerRule(max_p99_seconds=None).decide(series, W).phase == SUCCESSFUL


# --------------------------------------------------------------------------------------
# Argo Rollouts
# --------------------------------------------------------------------------------------


def test_argo_fails_at_failure_limit_plus_one() -> None:
    for limit in (0, 1, 2):
        rule = ArgoRule(failure_limit=limit, count=10)
        decision = rule.decide(minutes(*[True] * 10), W)
        assert (decision.phase, decision.windows) == (FAILED, (limit + 1) * PER_MINUTE)


def test_argo_succeeds_after_count_measurements_within_the_limit() -> None:
    series = minutes(True, False, True, False, False)
    assert ArgoRule(failure_limit=2).decide(series, W).phase == SUCCESSFUL
    decision = ArgoRule(failure_limit=1).decide(series, W)
    assert (decision.phase, decision.windows) == (FAILED, 3 * PER_MINUTE)
    assert ArgoRule().failed_before_end(series, W) == 2


def test_argo_no_data_is_inconclusive_never_a_pass() -> None:
    decision = ArgoRule().decide(windows(10 * PER_MINUTE, 0, 0), W)
    assert (decision.phase, decision.windows) == (INCONCLUSIVE, PER_MINUTE)


# --------------------------------------------------------------------------------------
# Kayenta
# --------------------------------------------------------------------------------------


def test_mann_whitney_matches_a_hand_computation() -> None:
    # Pooled 1 2 3 3 4 4 5 5 6 7: ranks 1 2 3.5 3.5 5.5 5.5 7.5 7.5 9 10; x's rank sum
    # 1 + 2 + 3.5 + 5.5 + 7.5 = 19.5, U = 19.5 - 5*6/2 = 4.5 (pairs x > y, ties half:
    # 3: 0.5, 4: 1.5, 5: 2.5). Tie-corrected variance 25/12 * (11 - 18/90) = 22.5;
    # z = (4.5 - 12.5 + 0.5) / sqrt(22.5) = -1.581, two-sided p = 0.1138.
    result = mann_whitney([1, 2, 3, 4, 5], [3, 4, 5, 6, 7], confidence=0.98)
    assert result.u == 4.5
    assert result.z == pytest.approx(-7.5 / math.sqrt(22.5))
    assert result.p_value == pytest.approx(0.1138, abs=1e-4)
    # The 25 differences x - y: median (13th) -2; C = floor(12.5 - 2.326 * 4.787) = 1,
    # so the interval is the smallest and largest difference.
    assert result.estimate == -2
    assert interval_rank(5, 5, 0.98) == 1
    assert (result.lower, result.upper) == (-6, 2)


def test_mann_whitney_without_ties() -> None:
    result = mann_whitney([1.5, 2.5, 8.0], [1.0, 2.0, 3.0, 4.0])
    assert result.u == 7  # 1.5 > 1; 2.5 > 1, 2; 8 > all four


def test_kayenta_classification_and_score() -> None:
    assert classify_metric([], [1.0]) == NODATA
    assert classify_metric([0.0, 0.0], [0.0, 0.0, 0.0]) == PASS
    high = [10.0 + k for k in range(30)]
    low = [float(k) for k in range(30)]
    assert classify_metric(high, low) == HIGH
    assert classify_metric(low, high) == LOW
    assert classify_metric(low, high, direction="increase") == PASS
    assert kayenta_score([PASS, HIGH]) == 50.0
    assert kayenta_score([PASS, NODATA]) == 100.0
    assert kayenta_score([NODATA, NODATA]) == 0.0


def reference_classification(canary: list[float], baseline: list[float], confidence: float) -> str:
    """classify_metric without its counting shortcut."""
    if sorted(canary) == sorted(baseline) or len(set(canary) | set(baseline)) == 1:
        return PASS
    result = mann_whitney(canary, baseline, confidence)
    bound = 0.25 * abs(result.estimate)
    if result.lower > bound:
        return HIGH
    if result.upper < -bound:
        return LOW
    return PASS


def test_kayenta_counting_shortcut_changes_no_classification() -> None:
    rng = random.Random(7)
    seen = set()
    for _ in range(300):
        n, m = rng.randint(3, 25), rng.randint(3, 25)
        shift = rng.choice([0.0, 0.5, 2.0, -2.0])
        canary = [float(rng.randint(0, 4)) + shift for _ in range(n)]
        baseline = [float(rng.randint(0, 4)) for _ in range(m)]
        confidence = rng.choice([0.9, 0.98, 0.999])
        expected = reference_classification(canary, baseline, confidence)
        assert classify_metric(canary, baseline, confidence) == expected
        seen.add(expected)
    assert seen == {PASS, HIGH, LOW}


def test_kayenta_rule_fails_early_below_marginal_passes_at_lifetime() -> None:
    bad = [TrafficWindow(100, 5 + k % 3, 100, k % 2) for k in range(120)]
    decision = KayentaRule().decide(bad, W)
    assert (decision.phase, decision.windows) == (FAILED, PER_MINUTE)
    same = [TrafficWindow(100, k % 2, 100, k % 2) for k in range(120)]
    decision = KayentaRule().decide(same, W)
    assert (decision.phase, decision.windows) == (SUCCESSFUL, 5 * PER_MINUTE)
    decision = KayentaRule().decide(windows(120, 0, 0), W)
    assert decision.phase == FAILED  # no data anywhere: score 0


# --------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------


def test_histogram_quantile_interpolates_like_promql() -> None:
    counts = [0, 0, 0, 10, 10, 0, 0, 0, 0, 0, 0, 0]
    assert histogram_quantile(0.5, counts) == pytest.approx(0.05)
    assert histogram_quantile(0.75, counts) == pytest.approx(0.075)
    assert histogram_quantile(0.99, [0] * 11 + [5]) == 10.0  # +Inf: the largest edge
    assert math.isnan(histogram_quantile(0.99, [0] * 12))


@pytest.mark.parametrize(("n", "p"), [(40, 0.01), (1000, 0.3), (2500, 0.9)])
def test_binomial_sampler_mean_and_variance(n: int, p: float) -> None:
    rng = random.Random(1)
    draws = [bench.binomial(rng, n, p) for _ in range(20000)]
    sd = math.sqrt(n * p * (1 - p))
    assert abs(statistics.fmean(draws) - n * p) < 5 * sd / math.sqrt(len(draws))
    assert statistics.variance(draws) == pytest.approx(sd**2, rel=0.05)
    assert all(0 <= d <= n for d in draws)


@pytest.mark.parametrize("lam", [3.0, 100.0, 2500.0])
def test_poisson_sampler_mean_and_variance(lam: float) -> None:
    rng = random.Random(2)
    draws = [bench.poisson(rng, lam) for _ in range(20000)]
    assert abs(statistics.fmean(draws) - lam) < 5 * math.sqrt(lam / len(draws))
    assert statistics.variance(draws) == pytest.approx(lam, rel=0.05)


def test_simulated_latency_bound_is_the_edge_nearest_stables_p99() -> None:
    scenario = next(s for s in bench.scenarios() if s.name == "healthy A/A 500 rps")
    run = bench.simulate(scenario, random.Random(3), windows=24)
    # Lognormal p99 is 160 ms; Prometheus interpolates inside (0.1, 0.25]: near 0.23 s.
    assert {w.latency_bound_seconds for w in run[4:]} == {0.25}
    assert bench.lognormal_p99(1.0) == pytest.approx(0.16, abs=0.001)
    for w in run:
        assert w.canary_slow == sum(w.canary_buckets[6:])


def test_brewline_rule_never_passes_no_data() -> None:
    decision = bench.BrewlineRule().decide(windows(bench.WINDOWS, 0, 0), W)
    assert decision.phase == INCONCLUSIVE
    assert decision.windows == bench.WINDOWS


def test_quick_run_writes_the_files_and_the_same_seed_gives_the_same_table(
    tmp_path: Path,
) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    assert bench.main(["--quick", "--seed", "11", "--out", str(first), "--jobs", "1"]) == 0
    table = (first / "judge.md").read_text()
    assert "| healthy A/A 1 rps |" in table and "### Targets (issue 4)" in table
    for rule in ("Flagger", "Argo Rollouts", "Kayenta", "brewline", "Flagger tuned"):
        assert f" {rule} |" in table
    data = json.loads((first / "judge.json").read_text())
    assert {r["scenario"] for r in data["results"]} == {s.name for s in bench.scenarios()}
    assert (first / "judge.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # A second run, split over two processes: the same table, byte for byte.
    assert bench.main(["--quick", "--seed", "11", "--out", str(second), "--jobs", "2"]) == 0
    assert (second / "judge.md").read_text() == table
