"""The statistical canary judge on seeded synthetic traffic with known truth.

Traffic: 5 s windows, 20 requests/s to the canary and 20 to stable unless a test says
otherwise, errors and slow requests binomial per window. Every count is drawn by inverse
CDF from its own uniform, drawn in a fixed order whatever the rates, so runs with the same
seed and a larger canary rate see at least as many canary errors in every window: the
coupling the monotonicity tests rely on.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brewline.judge import JudgeSpec, Verdict, Window, judge, validate_spec

WINDOW_SECONDS = 5
PER_WINDOW = 20 * WINDOW_SECONDS  # requests to each arm in a window at 20 rps
SLOW_RATE = 0.01  # the bucket edge sits near stable's p99: 1% of requests are slower
BOUND = 0.25
PHASES = {"Running", "Successful", "Failed", "Inconclusive"}

Split = Callable[[int, random.Random], tuple[int, int]]


def binomial(u: float, n: int, p: float) -> int:
    """The binomial(n, p) quantile of u: one uniform per count keeps runs coupled."""
    if p <= 0 or n <= 0:
        return 0
    if p >= 1:
        return n
    q = 1.0 - p
    pmf = q**n
    cdf = pmf
    k = 0
    while u > cdf and k < n:
        pmf *= (n - k) / (k + 1) * p / q
        k += 1
        cdf += pmf
    return k


def equal_split(_: int, rng: random.Random) -> tuple[int, int]:
    rng.random()  # keep the draws in step with the other splits
    return PER_WINDOW, PER_WINDOW


def stepped_split(index: int, rng: random.Random) -> tuple[int, int]:
    """40 rps in all, the canary's weight stepping 5, 10, 25, 50% each minute, jittered."""
    weight = (0.05, 0.10, 0.25, 0.50)[min(3, index // 12)]
    total = 2 * PER_WINDOW + int(rng.random() * 21) - 10
    canary = max(1, round(total * weight))
    return canary, total - canary


def make_window(
    rng: random.Random,
    index: int,
    canary_rate: float,
    stable_rate: float,
    *,
    canary_slow: float = SLOW_RATE,
    stable_slow: float = SLOW_RATE,
    split: Split = equal_split,
) -> Window:
    canary_n, stable_n = split(index, rng)
    u = [rng.random() for _ in range(4)]
    return Window(
        canary_requests=canary_n,
        canary_errors=binomial(u[0], canary_n, canary_rate),
        stable_requests=stable_n,
        stable_errors=binomial(u[1], stable_n, stable_rate),
        canary_slow=binomial(u[2], canary_n, canary_slow),
        stable_slow=binomial(u[3], stable_n, stable_slow),
        latency_bound_seconds=BOUND,
    )


def run(
    seed: int,
    canary_rate: float,
    stable_rate: float,
    *,
    spec: JudgeSpec | None = None,
    windows: int = 60,
    until_failed: bool = False,
    **traffic: object,
) -> tuple[str, int | None, Verdict]:
    """Judge after every window: (phase, seconds to decision or None, last verdict).

    With `until_failed` a pass does not stop the run: it then tells whether the fail test
    EVER crossed its boundary, the event alpha bounds.
    """
    spec = spec or JudgeSpec()
    rng = random.Random(seed)
    seen: list[Window] = []
    verdict = judge(spec, seen)
    for index in range(windows):
        seen.append(make_window(rng, index, canary_rate, stable_rate, **traffic))  # type: ignore[arg-type]
        verdict = judge(spec, seen)
        if verdict.phase == "Running" or (until_failed and verdict.phase == "Successful"):
            continue
        return verdict.phase, (index + 1) * WINDOW_SECONDS, verdict
    return "Running", None, verdict


def at_most(rate: float, runs: int) -> float:
    """rate plus three binomial standard deviations: the bound a seeded check allows."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / runs)


# --------------------------------------------------------------------------------------
# False rollbacks (alpha) and false passes (beta)
# --------------------------------------------------------------------------------------


def test_healthy_canaries_are_rolled_back_at_most_alpha_of_the_time() -> None:
    # 600 A/A runs of 3 minutes, passes ignored (the fail test must stay below 1/alpha at
    # every window): a quarter each at 0.5% and 3% errors, a noisy baseline both arms
    # share, and the canary's weight stepping up 5 -> 50%.
    spec = JudgeSpec(alpha=0.01, latency=False)
    rollbacks = 0
    runs = 0
    for seed in range(150):
        noisy = random.Random(10_000 + seed)
        shared = [noisy.uniform(0.002, 0.03) for _ in range(36)]
        for canary_rate, extra in (
            (0.005, {}),
            (0.03, {}),
            (0.005, {"split": stepped_split}),
        ):
            phase, _, _ = run(
                seed, canary_rate, canary_rate, spec=spec, windows=36, until_failed=True, **extra
            )
            rollbacks += phase == "Failed"
            runs += 1
        rollbacks += noisy_baseline_failed(seed, shared, spec)
        runs += 1
    assert runs == 600
    assert rollbacks / runs <= at_most(spec.alpha, runs), f"{rollbacks} of {runs} rolled back"


def noisy_baseline_failed(seed: int, shared: list[float], spec: JudgeSpec) -> bool:
    """A/A whose error rate jumps between windows (0.2% to 3%) in both arms alike."""
    rng = random.Random(seed)
    seen: list[Window] = []
    for index, rate in enumerate(shared):
        seen.append(make_window(rng, index, rate, rate))
        if judge(spec, seen).phase == "Failed":
            return True
    return False


@pytest.mark.parametrize(
    ("stable_rate", "canary_rate"),
    [
        (0.001, 0.006),  # harmful by the increase: 0.1% + 0.5 points
        (0.01, 0.02),  # harmful by the ratio: 2 x 1%
    ],
)
def test_a_harmful_canary_passes_at_most_beta_of_the_time(
    stable_rate: float, canary_rate: float
) -> None:
    # At the edge of "harmful", the hardest case; the pass test's own boundary is checked
    # at every window, even after the fail test has ended the run.
    spec = JudgeSpec(latency=False)
    runs = 120
    passes = 0
    for seed in range(runs):
        rng = random.Random(seed)
        seen: list[Window] = []
        for index in range(40):
            seen.append(make_window(rng, index, canary_rate, stable_rate))
            numbers = judge(spec, seen).numbers
            if numbers["errors_pass_evalue"] >= numbers["errors_pass_threshold"]:
                passes += 1
                break
    assert passes / runs <= at_most(spec.beta, runs), f"{passes} of {runs} passed"


# --------------------------------------------------------------------------------------
# Power, speed and monotonicity
# --------------------------------------------------------------------------------------


def test_targets_of_issue_4() -> None:
    # A 5x regression over 0.5% at 20 rps: Flagger's default (60 s interval, threshold 5)
    # needs at least 5 minutes; the target is a fifth of that. And 0.1% -> 0.8%, which a
    # 99% success-rate threshold never catches: 95% within 5 minutes. Latency judged too.
    five_x = [run(seed, 0.025, 0.005) for seed in range(100)]
    seconds = [s for phase, s, _ in five_x if phase == "Failed" and s is not None]
    assert len(seconds) == 100
    assert statistics.median(seconds) <= 60, sorted(seconds)

    small = [run(seed, 0.008, 0.001) for seed in range(100)]
    caught = [s for phase, s, _ in small if phase == "Failed" and s is not None and s <= 300]
    assert len(caught) >= 95, sorted(s or 0 for _, s, _ in small)


def test_bigger_regressions_are_caught_at_least_as_often_and_never_later() -> None:
    effects = (1.0, 1.5, 2.0, 5.0, 20.0)
    baseline = 0.005
    detected = dict.fromkeys(effects, 0)
    for seed in range(30):
        times = []
        for effect in effects:
            # until_failed: the fail test's crossing time, which the coupling makes
            # monotone on every seed; the real stopping rule is compared in aggregate.
            _, seconds, _ = run(seed, baseline * effect, baseline, windows=40, until_failed=True)
            times.append(math.inf if seconds is None else seconds)
            phase, _, _ = run(seed, baseline * effect, baseline, windows=40)
            detected[effect] += phase == "Failed"
        assert times == sorted(times, reverse=True), (seed, times)
    counts = [detected[effect] for effect in effects]
    assert counts == sorted(counts), counts
    assert detected[20.0] == 30


def test_a_slower_canary_is_rolled_back_on_latency() -> None:
    phase, seconds, verdict = run(3, 0.005, 0.005, canary_slow=0.06)
    assert phase == "Failed"
    assert seconds is not None and seconds <= 120
    assert verdict.reason.startswith(f"latency (slower than {BOUND:g} s)")
    assert "sequential ratio test e-value" in verdict.reason
    assert verdict.numbers["latency_fail_evalue"] >= verdict.numbers["latency_fail_threshold"]
    assert verdict.numbers["latency_alpha"] == pytest.approx(0.005)  # alpha split in two


def test_healthy_canaries_pass_and_the_reason_names_the_numbers() -> None:
    outcomes = [run(seed, 0.001, 0.001) for seed in range(20)]
    passed = [(s, v) for phase, s, v in outcomes if phase == "Successful"]
    assert len(passed) >= 15
    _, verdict = passed[0]
    assert "pass e-value" in verdict.reason
    assert "error rate: canary" in verdict.reason
    assert "latency (slower than 0.25 s)" in verdict.reason
    numbers = verdict.numbers
    for stream in ("errors", "latency"):
        assert numbers[f"{stream}_pass_evalue"] >= numbers[f"{stream}_pass_threshold"] == 20
        assert numbers[f"{stream}_canary_requests"] >= 200
        assert -1 <= numbers[f"{stream}_increase_upper"] <= 1
    assert numbers["errors_increase_upper"] < 0.005  # the bound shows the tolerance held
    assert all(math.isfinite(value) for value in numbers.values())


def test_a_verdict_over_200_windows_takes_well_under_10_ms() -> None:
    rng = random.Random(7)
    windows = [make_window(rng, i, 0.005, 0.005, split=stepped_split) for i in range(200)]
    spec = JudgeSpec()
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        judge(spec, windows)
        best = min(best, time.perf_counter() - start)
    assert best < 0.010, f"{best * 1000:.1f} ms"


# --------------------------------------------------------------------------------------
# No data, too little data, bad data
# --------------------------------------------------------------------------------------


def test_no_windows_is_running_then_inconclusive() -> None:
    assert judge(JudgeSpec(), []).phase == "Running"
    verdict = judge(JudgeSpec(), [], final=True)
    assert verdict.phase == "Inconclusive"
    assert "nothing was measured" in verdict.reason


def test_a_canary_that_gets_no_requests_never_passes() -> None:
    quiet = [Window(0, 0, PER_WINDOW, 0, 0, 1, BOUND) for _ in range(120)]
    assert judge(JudgeSpec(), quiet).phase == "Running"
    verdict = judge(JudgeSpec(), quiet, final=True)
    assert verdict.phase == "Inconclusive"
    assert "0 canary requests" in verdict.reason
    assert verdict.numbers["canary_requests"] == 0


def test_without_stable_traffic_there_is_nothing_to_compare() -> None:
    alone = [Window(PER_WINDOW, 0, 0, 0, 0, 0, BOUND) for _ in range(120)]
    verdict = judge(JudgeSpec(), alone, final=True)
    assert verdict.phase == "Inconclusive"
    assert "no window in which both canary and stable served requests" in verdict.reason


def test_a_pass_needs_min_canary_requests() -> None:
    spec = JudgeSpec(min_canary_requests=5_000, latency=False)
    clean = [Window(PER_WINDOW, 0, PER_WINDOW, 0) for _ in range(49)]
    verdict = judge(spec, clean)
    assert verdict.phase == "Running"
    assert verdict.numbers["errors_pass_evalue"] >= 20  # the evidence alone would pass
    assert "4900 of 5000 canary requests needed to pass" in verdict.reason
    final = judge(spec, clean, final=True)
    assert final.phase == "Inconclusive"
    assert final.reason.startswith("not enough traffic: 4900 canary requests in 49 windows")
    assert judge(spec, [*clean, clean[0]]).phase == "Successful"


def test_too_little_traffic_can_still_fail() -> None:
    # 30 requests, every one a 5xx, against a clean stable: a rollback needs no minimum.
    broken = [Window(10, 10, 10, 0, 0, 0, BOUND) for _ in range(3)]
    verdict = judge(JudgeSpec(), broken)
    assert verdict.phase == "Failed"
    assert verdict.reason.startswith("error rate: canary 30 errors in 30 requests")


def test_latency_without_a_bucket_edge_cannot_pass() -> None:
    clean = [Window(PER_WINDOW, 0, PER_WINDOW, 0) for _ in range(60)]
    verdict = judge(JudgeSpec(), clean, final=True)
    assert verdict.phase == "Inconclusive"
    assert "no window has latency_bound_seconds > 0" in verdict.reason
    assert judge(JudgeSpec(latency=False), clean).phase == "Successful"


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("canary_errors", math.nan, "canary_errors=nan"),
        ("stable_requests", -5.0, "stable_requests=-5.0"),
        ("canary_requests", math.inf, "canary_requests=inf"),
        ("stable_slow", None, "stable_slow=None"),
        ("canary_requests", "100", "canary_requests='100'"),
        ("latency_bound_seconds", math.nan, "latency_bound_seconds=nan"),
        ("canary_errors", 150.0, "canary_errors=150 exceeds canary_requests=100"),
    ],
)
def test_bad_numbers_are_inconclusive_naming_the_value(
    field: str, value: object, shown: str
) -> None:
    good = [Window(100, 0, 100, 0, 1, 1, BOUND) for _ in range(5)]
    changes: dict[str, Any] = {field: value}
    bad = [*good, replace(good[0], **changes)]
    for final in (False, True):
        verdict = judge(JudgeSpec(), bad, final=final)
        assert verdict.phase == "Inconclusive"
        assert f"window 6: {shown}" in verdict.reason


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(*[st.floats(allow_nan=True, allow_infinity=True, width=32)] * 7),
        max_size=8,
    )
)
def test_any_numbers_get_a_verdict_and_final_never_turns_running_into_a_pass(
    rows: list[tuple[float, ...]],
) -> None:
    windows = [Window(*row) for row in rows]
    now = judge(JudgeSpec(), windows)
    final = judge(JudgeSpec(), windows, final=True)
    assert now.phase in PHASES and final.phase in PHASES
    assert now.reason and final.reason
    assert final.phase != "Running"
    if now.phase == "Running":
        assert final.phase == "Inconclusive"
    else:
        assert final.phase == now.phase
    if any(not math.isfinite(v) or v < 0 for row in rows for v in row):
        assert now.phase == "Inconclusive"
    if sum(max(0.0, w.canary_requests) for w in windows) < 200:
        assert now.phase != "Successful"


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "shown"),
    [
        ({"alpha": 0.0}, "alpha=0.0"),
        ({"alpha": 0.5}, "alpha=0.5"),
        ({"alpha": math.nan}, "alpha=nan"),
        ({"alpha": "0.01"}, "alpha='0.01'"),
        ({"beta": -0.1}, "beta=-0.1"),
        ({"beta": 0.6}, "beta=0.6"),
        ({"harmful_ratio": 1.0}, "harmful_ratio=1.0"),
        ({"harmful_ratio": 0.5}, "harmful_ratio=0.5"),
        ({"harmful_ratio": math.inf}, "harmful_ratio=inf"),
        ({"max_increase": -0.01}, "max_increase=-0.01"),
        ({"max_increase": 1.0}, "max_increase=1.0"),
        ({"min_canary_requests": 0}, "min_canary_requests=0"),
        ({"min_canary_requests": 2.5}, "min_canary_requests=2.5"),
        ({"min_canary_requests": True}, "min_canary_requests=True"),
        ({"latency": "yes"}, "latency='yes'"),
    ],
)
def test_validate_spec_names_the_value_and_what_is_allowed(
    changes: dict[str, Any], shown: str
) -> None:
    spec = replace(JudgeSpec(), **changes)
    problems = validate_spec(spec)
    assert len(problems) == 1
    assert problems[0].startswith(f"{shown} is not allowed: ")
    verdict = judge(spec, [Window(100, 0, 100, 0)])
    assert verdict.phase == "Inconclusive"
    assert shown in verdict.reason


def test_the_defaults_are_valid() -> None:
    assert validate_spec(JudgeSpec()) == []
    assert validate_spec(JudgeSpec(max_increase=0.0, harmful_ratio=1.5)) == []
