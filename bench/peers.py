"""The peers' canary decision rules, replayed on synthetic windows: Flagger, Argo Rollouts, Kayenta.

Each rule reads the same per-window counts `bench.judge` simulates (5 s windows of
requests, 5xx answers and Prometheus-style latency buckets for canary and stable) and
walks them in time order until it decides, exactly as its controller would query
Prometheus at its own interval. What each rule models, and where it comes from:

Flagger (followed: fluxcd/flagger docs/gitbook/how-it-works.md, served as docs.flagger.app,
whose Canary example comments `interval` "schedule interval (default 60s)" and `threshold`
"max number of failed metric checks before rollback"; threshold 5 is the value of the
docs' examples and of the seed's Canary, which also sets maxWeight 50, stepWeight 10,
request-success-rate min 99 and request-duration max 500 ms, each over 1m). Every
interval both metrics are checked on that interval's data (`rate(...[1m])`); a failed
check halts advancement and adds one to FailedChecks, which is never reset during an
analysis (pkg/controller/scheduler.go). Failed checks reaching `threshold` roll back:
the controller acts on the tick after the threshold-th failed check, we roll back AT it
(one interval in Flagger's favour). A passed check advances the weight by stepWeight;
the check after reaching maxWeight promotes, so maxWeight/stepWeight = 5 passed checks
promote. No data: the success-rate query answers
nothing (0/0 is NaN), Flagger logs "Halt advancement no values found for ... metric
request-success-rate probably ... is not receiving traffic" and the check FAILS
(scheduler_metrics.go returns false on ErrNoValuesFound): an idle canary is rolled back
after `threshold` intervals.

Argo Rollouts (argoproj.github.io/argo-rollouts/features/analysis, the AnalysisTemplate
spec): a measurement every `interval`, `count` measurements, `failureLimit` (default 0)
failed measurements tolerated, `inconclusiveLimit` (default 0) inconclusive ones. The
template has `successCondition: result >= 0.99` and `failureCondition: result < 0.99` on
the interval's success ratio; a measurement with no data is NaN, which meets neither
condition, so it is Inconclusive (utils/evaluate: neither condition true -> Inconclusive)
and the run ends Inconclusive when inconclusive measurements exceed the limit: the rollout
pauses for a human, neither promoted nor aborted. The run is Failed as soon as failed
measurements exceed `failureLimit`, Successful after `count` measurements otherwise. The
seed references an AnalysisTemplate `success-rate` without giving it, so `interval` and
`count` are the docs' example (60s, 5) and the limits are the CRD defaults (0, 0). The
first measurement is taken one interval in (an initialDelay of one interval): at t=0
there is nothing to measure. The seed's Rollout starts this background analysis at step 2
(after a 2-minute pause at 10%); like the other rules, ours starts at t=0. Argo's
template has no latency metric, so Argo cannot see a latency regression.

Kayenta (Spinnaker ACA; spinnaker.io/docs/guides/user/canary/judge and NetflixACAJudge /
MannWhitneyClassifier in spinnaker/kayenta): per metric, the canary's and the baseline's
time series over the analysis so far (one point a 5 s window; NaN points, i.e. windows
without requests, removed: nanStrategy "remove", the default), a Mann-Whitney U test with
the Hodges-Lehmann shift estimate and its confidence interval (confLevel 0.98, the
judge's); High when the interval's lower end exceeds tolerance x |estimate| (tolerance
0.25), Low when its upper end is below -tolerance x |estimate|, Pass otherwise; identical
series pass; an empty series is NODATA. Metrics: the window error ratio and the window
p99 (histogram_quantile of the window's buckets), direction "either" (the default).
Score = 100 x Pass / (Pass + High + Low) over metrics with data, 0 when none has data.
A judgment every `interval` over the data since the start; a score below `marginal` (75)
fails the canary at once, and the last judgment at `lifetime` must reach `pass` (95).
Spinnaker's canary stage has no default lifetime; 5 minutes with 1-minute judgments
matches the other two rules' analysis length. Outlier removal is not modelled: with
error counts of 0 or 1 a window, an IQR filter would drop every window with an error.
"""

from __future__ import annotations

import math
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from brewline.analysis import FAILED, INCONCLUSIVE, RUNNING, SUCCESSFUL

# Prometheus client libraries' default histogram buckets (seconds); +Inf follows.
PROMETHEUS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
NAN = float("nan")


def histogram_quantile(
    q: float, counts: Sequence[float], edges: Sequence[float] = PROMETHEUS_BUCKETS
) -> float:
    """PromQL's histogram_quantile on per-bucket (not cumulative) counts; the last count
    is the +Inf bucket. Linear interpolation inside the bucket holding the rank; a rank
    in +Inf answers the largest finite edge; NaN without observations."""
    total = sum(counts)
    if total <= 0:
        return NAN
    rank = q * total
    below = 0.0
    for index, count in enumerate(counts):
        if below + count >= rank and count > 0:
            if index >= len(edges):
                return edges[-1]
            start = edges[index - 1] if index > 0 else 0.0
            return start + (edges[index] - start) * (rank - below) / count
        below += count
    return edges[-1]


@dataclass
class TrafficWindow:
    """What one window added for canary and stable: requests, 5xx answers and latency
    bucket counts (per bucket, +Inf last; empty when latency is not simulated).

    The derived numbers rules read many times (error ratios, window p99, the
    slow-request counts for brewline's judge) are computed once here.
    """

    canary_requests: int
    canary_errors: int
    stable_requests: int
    stable_errors: int
    canary_buckets: tuple[int, ...] = ()
    stable_buckets: tuple[int, ...] = ()
    # The bucket edge brewline's judge counts slow requests at (0: none) and the counts.
    latency_bound_seconds: float = 0.0
    canary_slow: int = 0
    stable_slow: int = 0
    canary_error_ratio: float = field(init=False)
    stable_error_ratio: float = field(init=False)
    canary_p99: float = field(init=False)
    stable_p99: float = field(init=False)

    def __post_init__(self) -> None:
        self.canary_error_ratio = (
            self.canary_errors / self.canary_requests if self.canary_requests else NAN
        )
        self.stable_error_ratio = (
            self.stable_errors / self.stable_requests if self.stable_requests else NAN
        )
        self.canary_p99 = histogram_quantile(0.99, self.canary_buckets)
        self.stable_p99 = histogram_quantile(0.99, self.stable_buckets)


@dataclass(frozen=True)
class Decision:
    """How a rule ended: `phase` (Successful, Failed, Inconclusive, or Running when it had
    not decided by the last window), after how many windows, and why."""

    phase: str
    windows: int
    reason: str


class Rule(Protocol):
    """A canary decision rule replayed on windows."""

    @property
    def label(self) -> str: ...

    def decide(self, windows: Sequence[TrafficWindow], window_seconds: float) -> Decision: ...


def _windows_per(interval_seconds: float, window_seconds: float) -> int:
    per = round(interval_seconds / window_seconds)
    if per < 1 or abs(per * window_seconds - interval_seconds) > 1e-9:
        raise ValueError(
            f"interval {interval_seconds:g}s is not a whole number of {window_seconds:g}s "
            "windows: pick a multiple of the window"
        )
    return per


def _sum_buckets(windows: Sequence[TrafficWindow]) -> list[int]:
    total: list[int] = []
    for w in windows:
        if not w.canary_buckets:
            continue
        if not total:
            total = [0] * len(w.canary_buckets)
        for index, count in enumerate(w.canary_buckets):
            total[index] += count
    return total


# --------------------------------------------------------------------------------------
# Flagger
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlaggerRule:
    """Flagger's analysis: one check of every metric per interval, rollback at the
    `threshold`-th failed check, promotion after `iterations` passed checks."""

    label: str = "Flagger"
    interval_seconds: float = 60.0
    threshold: int = 5
    iterations: int = 5  # maxWeight / stepWeight = 50 / 10 in the seed
    min_success_percent: float = 99.0
    max_p99_seconds: float | None = 0.5  # request-duration thresholdRange.max 500 (ms)

    def check(self, chunk: Sequence[TrafficWindow]) -> str:
        """'' when the interval's checks pass, else why the check failed."""
        requests = sum(w.canary_requests for w in chunk)
        if requests == 0:
            return "no values found for metric request-success-rate"
        errors = sum(w.canary_errors for w in chunk)
        success = 100.0 * (requests - errors) / requests
        if success < self.min_success_percent:
            return f"success rate {success:.2f}% < {self.min_success_percent:g}%"
        if self.max_p99_seconds is not None:
            p99 = histogram_quantile(0.99, _sum_buckets(chunk))
            if not math.isnan(p99) and p99 > self.max_p99_seconds:
                return f"request duration {p99 * 1000:.0f}ms > {self.max_p99_seconds * 1000:g}ms"
        return ""

    def decide(self, windows: Sequence[TrafficWindow], window_seconds: float) -> Decision:
        per = _windows_per(self.interval_seconds, window_seconds)
        failed = passed = 0
        for end in range(per, len(windows) + 1, per):
            why = self.check(windows[end - per : end])
            if why:
                failed += 1
                if failed >= self.threshold:
                    return Decision(FAILED, end, f"{failed} failed checks, last: {why}")
            else:
                passed += 1
                if passed >= self.iterations:
                    return Decision(SUCCESSFUL, end, f"{passed} passed checks, {failed} failed")
        return Decision(RUNNING, len(windows), f"{passed} passed and {failed} failed checks")

    def failed_before_promotion(
        self, windows: Sequence[TrafficWindow], window_seconds: float
    ) -> int:
        """Failed checks before the promoting check (or the last window), `threshold`
        aside: this rule with threshold T rolls back exactly when the answer is >= T,
        so one pass tunes every threshold."""
        per = _windows_per(self.interval_seconds, window_seconds)
        failed = passed = 0
        for end in range(per, len(windows) + 1, per):
            if self.check(windows[end - per : end]):
                failed += 1
            else:
                passed += 1
                if passed >= self.iterations:
                    break
        return failed


# --------------------------------------------------------------------------------------
# Argo Rollouts
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArgoRule:
    """An Argo Rollouts AnalysisRun of one success-rate metric."""

    label: str = "Argo Rollouts"
    interval_seconds: float = 60.0
    count: int = 5
    failure_limit: int = 0
    inconclusive_limit: int = 0
    min_success_ratio: float = 0.99

    def measure(self, chunk: Sequence[TrafficWindow]) -> str:
        """The measurement's phase: Successful, Failed, or Inconclusive without data."""
        requests = sum(w.canary_requests for w in chunk)
        if requests == 0:
            return INCONCLUSIVE  # NaN meets neither condition
        ratio = (requests - sum(w.canary_errors for w in chunk)) / requests
        return SUCCESSFUL if ratio >= self.min_success_ratio else FAILED

    def decide(self, windows: Sequence[TrafficWindow], window_seconds: float) -> Decision:
        per = _windows_per(self.interval_seconds, window_seconds)
        failed = inconclusive = taken = 0
        for end in range(per, len(windows) + 1, per):
            phase = self.measure(windows[end - per : end])
            taken += 1
            failed += phase == FAILED
            inconclusive += phase == INCONCLUSIVE
            if failed > self.failure_limit:
                return Decision(
                    FAILED, end, f"{failed} failed measurements > failureLimit {self.failure_limit}"
                )
            if inconclusive > self.inconclusive_limit:
                return Decision(
                    INCONCLUSIVE,
                    end,
                    f"{inconclusive} inconclusive measurements > inconclusiveLimit "
                    f"{self.inconclusive_limit}",
                )
            if taken >= self.count:
                return Decision(SUCCESSFUL, end, f"{taken} measurements, {failed} failed")
        return Decision(RUNNING, len(windows), f"{taken} measurements, {failed} failed")

    def failed_before_end(self, windows: Sequence[TrafficWindow], window_seconds: float) -> int:
        """Failed measurements until the run ends otherwise (count reached, too many
        inconclusive, or the last window), `failure_limit` aside: with limit L the rule
        fails exactly when the answer is > L, so one pass tunes every limit."""
        per = _windows_per(self.interval_seconds, window_seconds)
        failed = inconclusive = 0
        for taken, end in enumerate(range(per, len(windows) + 1, per), start=1):
            phase = self.measure(windows[end - per : end])
            failed += phase == FAILED
            inconclusive += phase == INCONCLUSIVE
            if inconclusive > self.inconclusive_limit or taken >= self.count:
                break
        return failed


# --------------------------------------------------------------------------------------
# Kayenta: Mann-Whitney
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MannWhitney:
    """A two-sample rank test of x (canary) against y (baseline).

    `u` counts the pairs with x_i > y_j (ties count one half); `z` and the two-sided
    `p_value` use the normal approximation with the tie-corrected variance and a
    continuity correction of 1/2 (as R's wilcox.test with exact = FALSE, which Kayenta's
    Java port follows); `estimate` is the Hodges-Lehmann shift, the median of all
    x_i - y_j, and (`lower`, `upper`) its distribution-free confidence interval: the
    C-th smallest and C-th largest differences, C = floor(nm/2 - z_(1-a/2) sqrt(nm(n+m+1)/12))
    (Hollander & Wolfe, Nonparametric Statistical Methods, 2nd ed., ch. 4.3, large-sample
    form; +-inf when C < 1).
    """

    u: float
    z: float
    p_value: float
    estimate: float
    lower: float
    upper: float


def interval_rank(n: int, m: int, confidence: float) -> int:
    """C: the interval for the shift is the C-th smallest to the C-th largest difference."""
    critical = statistics.NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    return math.floor(n * m / 2 - critical * math.sqrt(n * m * (n + m + 1) / 12))


def mann_whitney(x: Sequence[float], y: Sequence[float], confidence: float = 0.98) -> MannWhitney:
    """Mann-Whitney U test, Hodges-Lehmann estimate and interval of x - y (see MannWhitney)."""
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        raise ValueError(f"mann_whitney needs two non-empty samples, got {n} and {m} values")
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    total = n + m
    rank_sum_x = 0.0
    tie_term = 0.0
    start = 0
    while start < total:
        end = start
        while end + 1 < total and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        tied = end - start + 1
        average_rank = (start + end) / 2 + 1
        rank_sum_x += average_rank * sum(1 for k in range(start, end + 1) if pooled[k][1] == 0)
        tie_term += tied**3 - tied
        start = end + 1
    u = rank_sum_x - n * (n + 1) / 2
    variance = n * m / 12 * ((total + 1) - tie_term / (total * (total - 1) if total > 1 else 1))
    centred = u - n * m / 2
    if variance <= 0:
        z, p_value = 0.0, 1.0
    else:
        correction = 0.5 if centred > 0 else -0.5 if centred < 0 else 0.0
        z = (centred - correction) / math.sqrt(variance)
        p_value = math.erfc(abs(z) / math.sqrt(2))
    differences = sorted([a - b for a in x for b in y])
    pairs = n * m
    estimate = statistics.median(differences)
    c = interval_rank(n, m, confidence)
    if c < 1:
        lower, upper = -math.inf, math.inf
    else:
        lower, upper = differences[c - 1], differences[pairs - c]
    return MannWhitney(u, z, p_value, estimate, lower, upper)


PASS, HIGH, LOW, NODATA = "Pass", "High", "Low", "Nodata"


def classify_metric(
    canary: Sequence[float],
    baseline: Sequence[float],
    confidence: float = 0.98,
    tolerance: float = 0.25,
    direction: str = "either",
) -> str:
    """Kayenta's MannWhitneyClassifier on one metric's two series (NaNs already removed)."""
    if not canary or not baseline:
        return NODATA
    if sorted(canary) == sorted(baseline):
        return PASS
    if len(set(canary) | set(baseline)) == 1:
        return PASS
    # High needs the interval's lower end (the C-th smallest canary - baseline difference)
    # above 0, so at least nm - C + 1 positive differences; Low the mirror. Counting them
    # is O(n log m), the differences O(nm log nm): most judgments end here, exactly.
    n, m = len(canary), len(baseline)
    c = interval_rank(n, m, confidence)
    if c < 1:
        return PASS  # too few points: the interval is unbounded
    ordered = sorted(baseline)
    positive = sum(bisect_left(ordered, v) for v in canary)
    negative = sum(m - bisect_right(ordered, v) for v in canary)
    need = n * m - c + 1
    if not (
        (direction in ("increase", "either") and positive >= need)
        or (direction in ("decrease", "either") and negative >= need)
    ):
        return PASS
    result = mann_whitney(canary, baseline, confidence)
    bound = tolerance * abs(result.estimate)
    if direction in ("increase", "either") and result.lower > bound:
        return HIGH
    if direction in ("decrease", "either") and result.upper < -bound:
        return LOW
    return PASS


def kayenta_score(classifications: Sequence[str]) -> float:
    """WeightedSumScorer with one group: % of metrics with data that Pass; 0 if none has data."""
    judged = [c for c in classifications if c != NODATA]
    if not judged:
        return 0.0
    return 100.0 * sum(c == PASS for c in judged) / len(judged)


def _present(values: Sequence[float]) -> list[float]:
    return [v for v in values if not math.isnan(v)]


@dataclass(frozen=True)
class KayentaRule:
    """Kayenta judgments every `interval` until `lifetime` (see the module doc)."""

    label: str = "Kayenta"
    lifetime_seconds: float = 300.0
    interval_seconds: float = 60.0
    confidence: float = 0.98
    tolerance: float = 0.25
    direction: str = "either"
    pass_score: float = 95.0
    marginal_score: float = 75.0

    def classify(self, windows: Sequence[TrafficWindow]) -> dict[str, str]:
        """Each metric's classification on the windows given (the analysis so far)."""
        return {
            "error-ratio": classify_metric(
                _present([w.canary_error_ratio for w in windows]),
                _present([w.stable_error_ratio for w in windows]),
                self.confidence,
                self.tolerance,
                self.direction,
            ),
            "latency-p99": classify_metric(
                _present([w.canary_p99 for w in windows]),
                _present([w.stable_p99 for w in windows]),
                self.confidence,
                self.tolerance,
                self.direction,
            ),
        }

    def decide(self, windows: Sequence[TrafficWindow], window_seconds: float) -> Decision:
        per = _windows_per(self.interval_seconds, window_seconds)
        last = _windows_per(self.lifetime_seconds, window_seconds)
        ends = [*range(per, last, per), last]
        for end in (e for e in ends if e <= len(windows)):
            classes = self.classify(windows[:end])
            score = kayenta_score(list(classes.values()))
            shown = ", ".join(f"{k} {v}" for k, v in classes.items())
            if score < self.marginal_score:
                return Decision(FAILED, end, f"score {score:.0f} < marginal: {shown}")
            if end >= last:
                if score >= self.pass_score:
                    return Decision(SUCCESSFUL, end, f"score {score:.0f}: {shown}")
                return Decision(FAILED, end, f"final score {score:.0f} < pass: {shown}")
        return Decision(RUNNING, len(windows), "lifetime not reached")
