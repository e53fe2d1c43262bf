"""The statistical canary judge: canary against stable, decided as the evidence arrives.

A second kind of canary analysis beside the threshold rules of `brewline.analysis`. The
workflow measures the counter increases of both arms every window, calls `judge` with all
windows so far, and stops as soon as the verdict is no longer Running. Pure functions on
stdlib `math`: the Temporal workflow sandbox imports and replays this module.

Why this design
---------------
Two streams are judged the same way: 5xx answers ("errors") and requests slower than a
histogram bucket edge near stable's p99 ("slow", an exceedance count: a noise-tolerant
latency comparison that needs only the buckets Prometheus already has). For each stream:

* Fail: within a window, given that m events happened in the two arms together, each is
  the canary's with probability p = theta*n_c / (theta*n_c + n_s), theta being the
  canary/stable rate ratio (exact for Poisson counts). Conditioning on m per window makes
  the test immune to what both arms share (a noisy baseline, load swings, a dependency's
  hiccup) and handles a split that changes between windows. The statistic is the mixture
  likelihood ratio over a log-spaced grid of theta > 1 (1.25 to 100, equal weights)
  against theta = 1, a nonnegative supermartingale under "canary no worse than stable"
  (theta <= 1, by convexity of the exponential family; with binomial rather than Poisson
  request outcomes the null law is hypergeometric, which Hoeffding's comparison makes only
  more concentrated). Ville's inequality: P(it ever reaches 1/alpha) <= alpha, so the false
  rollback rate holds at ANY stopping time, checked after every window.
* Pass: harmful means rate_c >= max(harmful_ratio * rate_s, rate_s + max_increase), so a
  pass must show the canary's rate below that, whatever the unknown stable rate. The
  test multiplies, window by window, exp(-lambda*x_c + mu*x_s + credit*n_c); binomial
  moment bounds make its mean at most 1 under "harmful" for two kinds of bet: on the
  increase (mu = log(1 + a*n_c/n_s), credit = a*max_increase, with a = 1 - exp(-lambda):
  the stable rate cancels) and on the ratio (mu = log(1 + R*a*n_c/n_s), credit 0). Each
  window takes the Kelly bet of the kind that grows faster at the pooled rate of the
  windows BEFORE it (predictable, so the product stays a test supermartingale): the
  increase when events are rare (0.1% errors: no ratio test can gather evidence in
  minutes), the ratio when they are common (1% slow requests). Pass at 1/beta, so
  P(passing a harmful canary) <= beta at any stopping time. The same windows betting on
  the increase alone invert into an always-valid upper confidence bound on
  rate_c - rate_s, reported as `*_increase_upper`.

alpha is split evenly between the error and latency streams (Bonferroni: a rollback is
either stream failing). beta needs no split: a canary harmful in one stream passes only
if that stream passes. A pass also needs min_canary_requests canary requests in the
compared windows of each stream; too little data, no data, or a bad number is never a
pass: Running while more may come, Inconclusive when `final` or when a count is bad.

What the guarantees assume: counts are exact counter differences (sample each `_total`
at the window's edges and subtract; PromQL `increase()` extrapolates and can inflate the
counts) and, given the requests, events are independent. Bursty errors within one arm
(one client retrying a failure) break independence and make rollbacks likelier than
alpha. A window in which an arm served no requests compares nothing and is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from brewline.analysis import FAILED, INCONCLUSIVE, RUNNING, SUCCESSFUL

# --------------------------------------------------------------------------------------
# What travels through Temporal
# --------------------------------------------------------------------------------------


@dataclass
class Window:
    """What one measurement interval added, per arm (counter increases over the interval)."""

    canary_requests: float
    canary_errors: float  # 5xx answers
    stable_requests: float
    stable_errors: float
    canary_slow: float = 0.0  # requests slower than latency_bound_seconds
    stable_slow: float = 0.0
    latency_bound_seconds: float = 0.0  # the histogram bucket edge `slow` was counted at (0: none)


@dataclass
class JudgeSpec:
    """How sure the judge must be, and what counts as harmful.

    A canary is harmful in a stream (errors, or slow requests) when its rate is at least
    max(harmful_ratio * stable's rate, stable's rate + max_increase).
    """

    alpha: float = 0.01  # bound on rolling back a canary as good as stable (A/A), any stopping time
    beta: float = 0.05  # bound on passing a harmful canary, any stopping time
    harmful_ratio: float = 2.0  # canary/stable rate ratio that counts as harmful
    max_increase: float = 0.005  # absolute rate increase that counts as harmful (0.5 points)
    min_canary_requests: int = 200  # never a pass on fewer canary requests (not enough traffic)
    latency: bool = True  # judge the slow-request stream too (needs latency_bound_seconds > 0)


@dataclass
class Verdict:
    """The judge's answer: `phase` is Running (keep measuring), Successful, Failed or
    Inconclusive; `reason` is one line naming the test that decided and its numbers;
    `numbers` holds every number the decision was made on."""

    phase: str
    reason: str
    numbers: dict[str, float] = field(default_factory=dict)


# --------------------------------------------------------------------------------------
# The bets (fixed in advance or chosen from past windows only: a bet chosen after seeing
# the window it bets on would void the bounds)
# --------------------------------------------------------------------------------------

# Rate ratios the fail test bets on: log-spaced from a 25% regression to a canary failing
# almost every request. Equal weights cost log(9) = 2.2 nats of evidence, about two
# events' worth at a 5x regression.
FAIL_RATIOS = (1.25, 1.6, 2.0, 3.0, 5.0, 8.0, 13.0, 25.0, 100.0)
# The pass test's guess of the event rate before it has seen any: 0.5 events in 50
# requests (1%), soon outweighed by the pooled counts of both arms.
PRIOR_EVENTS = 0.5
PRIOR_REQUESTS = 50.0
# The share a of its stake (a = 1 - exp(-lambda)) the pass test may bet in one window.
BET_MIN = 0.01
BET_MAX = 0.97
# e-values are shown to people as numbers; exp(700) is near the largest float.
_LOG_CAP = 700.0

# --------------------------------------------------------------------------------------
# Checking the inputs
# --------------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_spec(spec: JudgeSpec) -> list[str]:
    """Problems with `spec`, each naming the value and what is allowed; [] when usable."""
    problems: list[str] = []

    def fraction(name: str, value: object, low: float, high: float, rule: str) -> None:
        if not _is_number(value) or not (low < float(value) < high):  # type: ignore[arg-type]
            problems.append(f"{name}={value!r} is not allowed: {rule}")

    fraction("alpha", spec.alpha, 0.0, 0.5, "use a number between 0 and 0.5, e.g. 0.01")
    fraction("beta", spec.beta, 0.0, 0.5, "use a number between 0 and 0.5, e.g. 0.05")
    fraction(
        "harmful_ratio",
        spec.harmful_ratio,
        1.0,
        1e6,
        "use a finite ratio above 1, e.g. 2 (a canary with twice stable's rate is harmful)",
    )
    if not _is_number(spec.max_increase) or not (0.0 <= float(spec.max_increase) < 1.0):
        problems.append(
            f"max_increase={spec.max_increase!r} is not allowed: use a rate increase "
            "from 0 up to (not including) 1, e.g. 0.005 for 0.5 points"
        )
    if (
        not isinstance(spec.min_canary_requests, int)
        or isinstance(spec.min_canary_requests, bool)
        or spec.min_canary_requests < 1
    ):
        problems.append(
            f"min_canary_requests={spec.min_canary_requests!r} is not allowed: use a whole "
            "number of at least 1, e.g. 200 (a pass needs that many canary requests)"
        )
    if not isinstance(spec.latency, bool):
        problems.append(f"latency={spec.latency!r} is not allowed: use true or false")
    return problems


_COUNT_FIELDS = (
    "canary_requests",
    "canary_errors",
    "stable_requests",
    "stable_errors",
    "canary_slow",
    "stable_slow",
    "latency_bound_seconds",
)
_SUBSETS = (
    ("canary_errors", "canary_requests"),
    ("stable_errors", "stable_requests"),
    ("canary_slow", "canary_requests"),
    ("stable_slow", "stable_requests"),
)


_PLAIN = (int, float)


def _window_problems(index: int, window: Window) -> list[str]:
    """What makes one window unusable, naming window (1-based), field and value.

    Never raises: a caller may hand over anything (None, strings, NaN), and the answer
    must still be a verdict.
    """
    # The common case, checked cheaply: judge sees every window again on every call.
    try:
        n_c = window.canary_requests
        n_s = window.stable_requests
        counts = (
            n_c,
            window.canary_errors,
            n_s,
            window.stable_errors,
            window.canary_slow,
            window.stable_slow,
            window.latency_bound_seconds,
        )
        if all(type(v) in _PLAIN for v in counts):
            _, x_c, _, x_s, slow_c, slow_s, bound = counts
            if (
                0 <= x_c <= n_c < math.inf
                and 0 <= x_s <= n_s < math.inf
                and 0 <= slow_c <= n_c
                and 0 <= slow_s <= n_s
                and 0 <= bound < math.inf
            ):
                return []
    except AttributeError:
        pass
    problems: list[str] = []
    values: dict[str, float] = {}
    for name in _COUNT_FIELDS:
        value: Any = getattr(window, name, None)
        if not _is_number(value) or not math.isfinite(value) or value < 0:
            problems.append(
                f"window {index}: {name}={value!r} is not a count (need a finite number >= 0)"
            )
        else:
            values[name] = float(value)
    for part, whole in _SUBSETS:
        # A relative slack for floating point only: a part above its whole is broken data.
        if part in values and whole in values and values[part] > values[whole] * (1 + 1e-9):
            problems.append(
                f"window {index}: {part}={values[part]:g} exceeds {whole}={values[whole]:g}"
            )
    return problems


# --------------------------------------------------------------------------------------
# One stream: the evidence
# --------------------------------------------------------------------------------------


@dataclass
class _Stream:
    """One stream's counts in the compared windows (both arms served requests)."""

    name: str  # "errors" or "latency"
    event: str  # what is counted, for people: "errors", "slow requests"
    title: str  # how the stream is named in a reason
    rows: list[tuple[float, float, float, float]] = field(default_factory=list)
    skipped: int = 0  # windows not compared
    canary_requests: float = 0.0
    canary_events: float = 0.0
    stable_requests: float = 0.0
    stable_events: float = 0.0

    def add(self, canary_n: float, canary_x: float, stable_n: float, stable_x: float) -> None:
        self.rows.append((canary_n, canary_x, stable_n, stable_x))
        self.canary_requests += canary_n
        self.canary_events += canary_x
        self.stable_requests += stable_n
        self.stable_events += stable_x


@dataclass
class _Evidence:
    log_fail: float  # log of the fail e-value (mixture LR, theta > 1 against theta = 1)
    log_pass: float  # log of the pass e-value
    log_pass_by_ratio: float  # what the windows that bet on the ratio added to log_pass
    increase_upper: float  # always-valid (1 - beta) upper bound on rate_c - rate_s


def _log_mean_exp(logs: Sequence[float]) -> float:
    top = max(logs)
    return top + math.log(sum(math.exp(v - top) for v in logs) / len(logs))


def _fail_evidence(stream: _Stream) -> float:
    """log of the mixture likelihood ratio, theta > 1 against theta = 1, given the events.

    log L(theta) = X_c log theta - sum_i m_i log(1 + (theta - 1) q_i), m_i the events of
    window i in both arms, q_i the canary's share of its requests.
    """
    fail = [stream.canary_events * math.log(theta) for theta in FAIL_RATIOS]
    # Windows with the same split contribute alike: summing their events first makes a
    # verdict over hundreds of windows cost a few grid evaluations per distinct split.
    events_by_share: dict[float, float] = {}
    for n_c, x_c, n_s, x_s in stream.rows:
        if x_c + x_s > 0:
            share = n_c / (n_c + n_s)
            events_by_share[share] = events_by_share.get(share, 0.0) + x_c + x_s
    for share, events in events_by_share.items():
        for k, theta in enumerate(FAIL_RATIOS):
            fail[k] -= events * math.log1p((theta - 1.0) * share)
    return _log_mean_exp(fail)


def _increase_bet(rate: float, odds: float, delta: float) -> float:
    """The Kelly share for the bet on the increase at equal rates `rate` in both arms.

    It maximises rate (log(1 - a) + log(1 + a odds) / odds) + a delta, whose derivative
    vanishes at delta odds a^2 + (rate (1 + odds) + delta (1 - odds)) a - delta = 0.
    """
    if delta <= 0:
        return BET_MIN
    b = rate * (1.0 + odds) + delta * (1.0 - odds)
    a = 2.0 * delta / (b + math.sqrt(b * b + 4.0 * delta * delta * odds))  # the root, stably
    return min(BET_MAX, max(BET_MIN, a))


def _pass_bet(rate: float, odds: float, ratio: float, delta: float) -> tuple[float, bool]:
    """The pass test's bet for one window: (a, bets on the ratio), a = 1 - exp(-lambda).

    `rate` is the pooled event rate of the windows before, `odds` the window's canary
    requests over stable's. The bet on the increase gains when events are rare, the bet
    on the ratio, a = (R - 1) / (R (1 + odds)), when they are common; each is the Kelly
    bet at equal rates, and the one with the larger expected log-growth is taken (mixing
    the two never grows faster: the growth is largest at one of them).
    """
    a0 = _increase_bet(rate, odds, delta)
    g0 = rate * (math.log1p(-a0) + math.log1p(a0 * odds) / odds) + a0 * delta
    a1 = min(BET_MAX, max(BET_MIN, (ratio - 1.0) / (ratio * (1.0 + odds))))
    g1 = rate * (math.log1p(-a1) + math.log1p(ratio * a1 * odds) / odds)
    return (a1, True) if g1 > g0 else (a0, False)


def _evidence(stream: _Stream, spec: JudgeSpec) -> _Evidence:
    """The e-values of the fail and pass tests over all compared windows (see module doc).

    Pass: per window, exp(-lambda x_c + mu x_s + credit n_c) with a = 1 - exp(-lambda).
    Since E exp(-lambda x_c) <= exp(-a n_c r_c) and E exp(mu x_s) <= exp(n_s r_s (e^mu - 1))
    for binomial (and Poisson) counts, its mean is at most
    exp(-a n_c r_c + n_s r_s (e^mu - 1) + credit n_c), which is <= 1 whenever
    r_c >= max(R r_s, r_s + delta) for either bet: on the increase, mu = log(1 + a odds)
    and credit = a delta (r_s cancels); on the ratio, mu = log(1 + R a odds), credit 0.
    So the product is a supermartingale under "harmful", and Ville bounds a pass by beta.
    """
    ratio = float(spec.harmful_ratio)
    delta = float(spec.max_increase)
    events = requests = 0.0
    log_pass = by_ratio = 0.0
    # The same windows bet on the increase alone: log e-value = base + d * slope for the
    # hypothesis "r_c - r_s >= d", which inverts to an upper bound on the increase.
    base = slope = 0.0
    for n_c, x_c, n_s, x_s in stream.rows:
        rate = (events + PRIOR_EVENTS) / (requests + PRIOR_REQUESTS)
        odds = n_c / n_s
        a, on_ratio = _pass_bet(rate, odds, ratio, delta)
        lam = -math.log1p(-a)
        if on_ratio:
            step = -lam * x_c + x_s * math.log1p(ratio * a * odds)
            by_ratio += step
            a0 = _increase_bet(rate, odds, delta)
            lam0 = -math.log1p(-a0)
        else:
            step = -lam * x_c + x_s * math.log1p(a * odds) + a * delta * n_c
            a0, lam0 = a, lam
        log_pass += step
        base += -lam0 * x_c + x_s * math.log1p(a0 * odds)
        slope += a0 * n_c
        events += x_c + x_s
        requests += n_c + n_s
    upper = (math.log(1.0 / float(spec.beta)) - base) / slope if slope > 0 else 1.0
    return _Evidence(
        log_fail=_fail_evidence(stream),
        log_pass=log_pass,
        log_pass_by_ratio=by_ratio,
        increase_upper=min(1.0, max(-1.0, upper)),
    )


# --------------------------------------------------------------------------------------
# One stream: the decision
# --------------------------------------------------------------------------------------


@dataclass
class _StreamVerdict:
    phase: str  # Running, Successful or Failed
    reason: str
    numbers: dict[str, float]


def _count(value: float) -> str:
    return f"{int(value)}" if value == int(value) else f"{value:.1f}"


def _windows(count: int) -> str:
    return "1 window" if count == 1 else f"{count} windows"


def _rate(events: float, requests: float) -> float:
    return events / requests if requests > 0 else 0.0


def _e(log_value: float) -> float:
    return math.exp(max(min(log_value, _LOG_CAP), -_LOG_CAP))


def _judge_stream(stream: _Stream, spec: JudgeSpec, alpha: float) -> _StreamVerdict:
    n_c, x_c = stream.canary_requests, stream.canary_events
    n_s, x_s = stream.stable_requests, stream.stable_events
    rate_c, rate_s = _rate(x_c, n_c), _rate(x_s, n_s)
    prefix = stream.name
    numbers: dict[str, float] = {
        f"{prefix}_windows_compared": float(len(stream.rows)),
        f"{prefix}_windows_skipped": float(stream.skipped),
        f"{prefix}_canary_requests": n_c,
        f"{prefix}_canary_events": x_c,
        f"{prefix}_canary_rate": rate_c,
        f"{prefix}_stable_requests": n_s,
        f"{prefix}_stable_events": x_s,
        f"{prefix}_stable_rate": rate_s,
        f"{prefix}_alpha": alpha,
        f"{prefix}_fail_threshold": 1.0 / alpha,
        f"{prefix}_pass_threshold": 1.0 / spec.beta,
        f"{prefix}_tolerated_rate": max(spec.harmful_ratio * rate_s, rate_s + spec.max_increase),
    }
    if x_s > 0 and n_c > 0:
        numbers[f"{prefix}_rate_ratio"] = rate_c / rate_s
    counts = (
        f"{stream.title}: canary {_count(x_c)} {stream.event} in {_count(n_c)} requests "
        f"({rate_c:.3%}) vs stable {_count(x_s)} in {_count(n_s)} ({rate_s:.3%})"
    )
    if not stream.rows:
        return _StreamVerdict(
            RUNNING,
            f"{stream.title}: no window in which both canary and stable served requests, "
            "nothing to compare yet",
            numbers,
        )

    evidence = _evidence(stream, spec)
    fail_e, pass_e = _e(evidence.log_fail), _e(evidence.log_pass)
    numbers.update(
        {
            f"{prefix}_fail_evalue": fail_e,
            f"{prefix}_pass_evalue": pass_e,
            f"{prefix}_pass_evalue_from_ratio_bets": _e(evidence.log_pass_by_ratio),
            f"{prefix}_increase_upper": evidence.increase_upper,
        }
    )
    # Fail is checked first: if both cross at once, the cautious answer wins.
    if evidence.log_fail >= math.log(1.0 / alpha):
        return _StreamVerdict(
            FAILED,
            f"{counts}; sequential ratio test e-value {fail_e:.3g} >= {1 / alpha:.3g} "
            f"(1/alpha, alpha {alpha:g} for {stream.name}): the canary's share of "
            f"{stream.event} is above stable's",
            numbers,
        )
    enough = n_c >= spec.min_canary_requests
    if enough and evidence.log_pass >= math.log(1.0 / spec.beta):
        kind = "ratio" if evidence.log_pass_by_ratio >= evidence.log_pass / 2 else "increase"
        return _StreamVerdict(
            SUCCESSFUL,
            f"{counts}; pass e-value {pass_e:.3g} >= {1 / spec.beta:.3g} (1/beta, mostly "
            f"from bets on the {kind}): below max({spec.harmful_ratio:g} x stable, stable "
            f"+ {spec.max_increase:.2%}); increase at most "
            f"{evidence.increase_upper * 100:+.3f} points (always-valid bound)",
            numbers,
        )
    waiting = (
        ""
        if enough
        else f", {_count(n_c)} of {spec.min_canary_requests} canary requests needed to pass"
    )
    return _StreamVerdict(
        RUNNING,
        f"{counts}; fail e-value {fail_e:.3g} < {1 / alpha:.3g}, pass e-value "
        f"{pass_e:.3g} < {1 / spec.beta:.3g}{waiting}",
        numbers,
    )


def _streams(spec: JudgeSpec, windows: Sequence[Window]) -> list[_Stream]:
    bounds = [w.latency_bound_seconds for w in windows if w.latency_bound_seconds > 0]
    edge = f"slower than {bounds[-1]:g} s" if bounds else "slow"
    errors = _Stream("errors", "errors", "error rate")
    latency = _Stream("latency", "slow requests", f"latency ({edge})")
    for w in windows:
        if w.canary_requests > 0 and w.stable_requests > 0:
            errors.add(w.canary_requests, w.canary_errors, w.stable_requests, w.stable_errors)
            if w.latency_bound_seconds > 0:
                latency.add(w.canary_requests, w.canary_slow, w.stable_requests, w.stable_slow)
            else:
                latency.skipped += 1
        else:
            errors.skipped += 1
            latency.skipped += 1
    return [errors, latency] if spec.latency else [errors]


# --------------------------------------------------------------------------------------
# The verdict
# --------------------------------------------------------------------------------------


def judge(spec: JudgeSpec, windows: Sequence[Window], final: bool = False) -> Verdict:
    """The verdict on all windows so far (oldest first); never raises on bad numbers.

    Failed as soon as a stream's fail e-value reaches 1/alpha (alpha split evenly between
    errors and latency when `spec.latency`), Successful once every judged stream's pass
    e-value reaches 1/beta on at least `min_canary_requests` canary requests, otherwise
    Running, or Inconclusive when `final` (no more windows will come). A bad spec or a
    count that is NaN, infinite, negative or above its requests is Inconclusive with a
    reason naming it. Latency is judged on windows with `latency_bound_seconds` > 0 only:
    with `spec.latency` and no such window, the canary cannot pass.
    """
    problems = validate_spec(spec)
    if problems:
        return Verdict(
            INCONCLUSIVE, "the judge's settings are unusable: " + "; ".join(problems), {}
        )
    bad = [p for index, w in enumerate(windows, start=1) for p in _window_problems(index, w)]
    if bad:
        shown = "; ".join(bad[:3]) + (f"; and {len(bad) - 3} more" if len(bad) > 3 else "")
        return Verdict(
            INCONCLUSIVE,
            f"unusable measurements, the canary cannot be judged on them: {shown}",
            {"windows": float(len(windows)), "bad_values": float(len(bad))},
        )

    numbers: dict[str, float] = {
        "windows": float(len(windows)),
        "canary_requests": float(sum(w.canary_requests for w in windows)),
        "stable_requests": float(sum(w.stable_requests for w in windows)),
        "alpha": float(spec.alpha),
        "beta": float(spec.beta),
        "harmful_ratio": float(spec.harmful_ratio),
        "max_increase": float(spec.max_increase),
        "min_canary_requests": float(spec.min_canary_requests),
    }
    bounds = [w.latency_bound_seconds for w in windows if w.latency_bound_seconds > 0]
    if spec.latency and bounds:
        numbers["latency_bound_seconds"] = float(bounds[-1])
    if not windows:
        if final:
            return Verdict(
                INCONCLUSIVE, "no windows: nothing was measured, so the canary cannot pass", numbers
            )
        return Verdict(RUNNING, "no windows yet: nothing measured", numbers)

    streams = _streams(spec, windows)
    alpha = float(spec.alpha) / len(streams)  # Bonferroni over the streams
    verdicts = [_judge_stream(stream, spec, alpha) for stream in streams]
    if spec.latency and not bounds:
        verdicts[1].reason = (
            "latency: no window has latency_bound_seconds > 0, so slow requests were not "
            "counted and the canary cannot pass; count them or set latency to false"
        )
    for verdict in verdicts:
        numbers.update(verdict.numbers)

    failed = [v.reason for v in verdicts if v.phase == FAILED]
    if failed:
        return Verdict(FAILED, "; ".join(failed), numbers)
    reasons = "; ".join(v.reason for v in verdicts)
    if all(v.phase == SUCCESSFUL for v in verdicts):
        return Verdict(SUCCESSFUL, reasons, numbers)
    if not final:
        return Verdict(RUNNING, f"keep measuring: {reasons}", numbers)
    if numbers["canary_requests"] < spec.min_canary_requests:
        return Verdict(
            INCONCLUSIVE,
            f"not enough traffic: {_count(numbers['canary_requests'])} canary requests in "
            f"{_windows(len(windows))}, at least {spec.min_canary_requests} needed "
            f"(min_canary_requests); {reasons}",
            numbers,
        )
    return Verdict(INCONCLUSIVE, f"no decision after {_windows(len(windows))}: {reasons}", numbers)
