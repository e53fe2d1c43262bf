"""CanaryWorkflow: one service's progressive delivery in one environment.

deploy the canary beside stable at weight 0 -> run the steps of pipeline.yaml's `canary:`
(set_weight, pause with a duration, pause for a person, analysis) -> promote (the canary
becomes stable at 100%, the old version goes) or roll back (weight 0 to the canary at once,
canary removed, stable untouched).

An analysis measures every metric each `interval` through Prometheus and judges them with
brewline.analysis (Argo Rollouts' rules; no data is never a pass, an outage is an Error).
The router's metrics are read: Traefik's on the local platform, ingress-nginx's (from the
cluster's Prometheus, `kubernetes.prometheus_url`) when the input has a Kubernetes spec.
People steer it like `kubectl argo rollouts`: promote (skip the current pause), promote
--full (skip every remaining step), pause, resume, abort (roll back now). Cancelling the
workflow rolls the canary back too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from brewline import canary as c
    from brewline.analysis import (
        INGRESS_NGINX,
        TRAEFIK,
        AnalysisOutcome,
        Measurement,
        MetricSpec,
        classify,
        decide,
        query_vars,
        render_metric,
        render_query,
        request_count_query,
    )
    from brewline.approval import refusal
    from brewline.canary_config import CanaryStep
    from brewline.judge import Verdict, Window, judge
    from brewline.model import (
        CanaryDeployInput,
        CanaryEndInput,
        CountWindowInput,
        CountWindowResult,
        LoadInput,
        LoadResult,
        MetricQueryInput,
        MetricQueryResult,
        SetWeightInput,
        TrafficState,
    )
    from brewline.signing import UNSIGNED_NOTICE, canary_stage
    from workflows import activity_options as opts
    from workflows.failures import failure_reason
    from workflows.notifications import notify
    from workflows.signed_decisions import SIGNED_APPROVALS, Expected, check

T = TypeVar("T")
# Requests the canary served in the window: fewer than min_requests makes a measurement
# Inconclusive, so a canary nobody called can never pass. Traefik's; the router's own is
# brewline.analysis.request_count_query(router).
REQUEST_COUNT = 'sum(increase(traefik_service_requests_total{service="{canary}"}[{interval}]))'
# patch id: a canary with a Kubernetes spec reads ingress-nginx's metrics from the
# cluster's Prometheus (before, it read Traefik names from the worker's Prometheus)
ROUTER_METRICS = "kubernetes-canary-reads-ingress-nginx"
# patch id: a promote sent while the canary does not wait is kept for its next pause
EARLY_PROMOTE = "early-promote-skips-next-pause"
# patch id: the load generator runs on its own task queue (opts.LOAD_OWN_QUEUE)
LOAD_QUEUE = "load-on-its-own-queue"
# patch id: a load chunk that ends otherwise than cancelled after the canary asked it to
# stop (its worker died) is not followed by another one
LOAD_STOPS_WHEN_ASKED = "load-stops-when-asked"
LOAD_CHUNK_SECONDS = 600  # the load generator is restarted in chunks while the canary runs


@workflow.defn(name="CanaryWorkflow")
class CanaryWorkflow:
    @workflow.init
    def __init__(self, inp: c.CanaryInput) -> None:
        self._in = inp
        self._phase = "starting"
        self._step = 0
        self._weight = 0
        self._paused_reason = ""
        self._skip_pause = False
        self._resumed = False
        self._full_promote = False
        self._manual_pause = False
        self._abort: c.ControlRecord | None = None
        self._measurements: list[Measurement] = []
        self._analysis: AnalysisOutcome | None = None
        self._controls: list[c.ControlRecord] = []
        self._traffic: TrafficState | None = None
        self._reason = ""
        self._windows: list[Window] = []  # judge: sequential, every window of this canary
        self._verdict: Verdict | None = None
        self._load_stopping = False  # the canary has asked its load generator to stop

    @workflow.run
    async def run(self, inp: c.CanaryInput) -> c.CanaryResult:
        problems = c.input_problems(inp)
        if problems:  # started around the release: fail at once, before anything runs
            raise ApplicationError(
                "invalid canary input: " + "; ".join(problems),
                type="InvalidRequest",
                non_retryable=True,
            )
        # Asked first, once: a canary started before signed controls keeps its rules.
        self._signed_controls()
        load: asyncio.Task[None] | None = None
        try:
            self._traffic = await opts.call(
                "deploy_canary",
                CanaryDeployInput(
                    inp.release_id,
                    inp.environment,
                    inp.target,
                    inp.service,
                    inp.version,
                    inp.image,
                    inp.smoke_path,
                    dict(inp.env),
                    inp.kubernetes,
                ),
                TrafficState,
                self._rollout(opts.DEPLOY),
                f"start canary {inp.service} {inp.version} in {inp.environment}",
            )
            if inp.canary.traffic == "load-generator":
                load = asyncio.create_task(self._keep_load())
            self._set_phase("progressing")
            why_not = await self._progress()
        except asyncio.CancelledError:
            self._reason = "the release was aborted"
            await self._roll_back_now(load)
            raise
        if why_not:
            self._reason = why_not
            await self._roll_back_now(load)
            await self._notify("rolled-back", f"rolled back: {why_not}")
            await self._handlers_finished()
            return c.CanaryResult("rolled-back", why_not, self._traffic, self._measurements)
        await self._end_load(load)
        self._set_phase("promoting")
        self._traffic = await opts.call(
            "promote_canary",
            self._end_input(),
            TrafficState,
            self._rollout(opts.DEPLOY),
            f"promote canary {inp.service} {inp.version}",
        )
        self._weight = 100
        self._set_phase("promoted")
        await self._notify("promoted", "promoted: the canary is stable at 100%")
        await self._handlers_finished()
        return c.CanaryResult("promoted", "", self._traffic, self._measurements)

    # ------------------------------------------------------------------ the steps
    async def _progress(self) -> str | None:
        """Run the steps; None when the canary may be promoted, else why it must not be."""
        steps = self._in.canary.steps
        while self._step < len(steps):
            if self._abort:
                return self._abort_reason()
            if self._full_promote:
                return None
            step = steps[self._step]
            if step.kind == "set_weight":
                await self._set_weight(step.weight)
            elif step.kind == "pause":
                await self._pause(step)
            elif step.kind == "analysis":
                why_not = await self._analyse()
                if why_not:
                    return why_not
            await self._wait_while_paused("paused by a person")
            self._step += 1
            self._publish()
            await self._notify("canary-step", self._step_text(step))
        return self._abort_reason() if self._abort else None

    async def _set_weight(self, weight: int) -> None:
        self._traffic = await opts.call(
            "set_canary_weight",
            SetWeightInput(
                self._in.release_id,
                self._in.environment,
                self._in.target,
                self._in.service,
                weight,
                self._in.kubernetes,
            ),
            TrafficState,
            self._rollout(opts.DEPLOY),
            f"canary {self._in.service} to {weight}%",
        )
        self._weight = weight
        self._publish()

    async def _pause(self, step: CanaryStep) -> None:
        # A promote that came while nothing waited skips this pause; before this patch it
        # was forgotten here and the canary could wait for a promote it had accepted.
        if not workflow.patched(EARLY_PROMOTE):
            self._skip_pause = False
        done: Callable[[], bool] = lambda: (  # noqa: E731
            self._skip_pause or self._full_promote or self._abort is not None
        )
        if step.pause_seconds is None:
            self._set_phase("paused", "waiting for a person: starter.py promote")
            await workflow.wait_condition(done)
        else:
            self._set_phase("paused", f"pause of {step.pause_seconds}s")
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(done, timeout=timedelta(seconds=step.pause_seconds))
        self._skip_pause = False  # one promote skips one pause
        self._set_phase("progressing")

    async def _wait_while_paused(self, reason: str) -> None:
        if not self._manual_pause:
            return
        self._set_phase("paused", reason)
        await workflow.wait_condition(
            lambda: not self._manual_pause or self._full_promote or self._abort is not None
        )
        self._set_phase("progressing")

    async def _analyse(self) -> str | None:
        """Run the analysis; None to go on, else why the canary must be rolled back.

        An Inconclusive analysis rolls back, or with `on_inconclusive: pause` waits for a
        person: `resume` measures again from scratch, `promote` accepts and goes on. An
        Error one (Prometheus unreachable past consecutive_error_limit) does the same under
        `on_error`. Neither ever promotes by itself.
        """
        pause_on = {
            "Inconclusive": self._in.canary.on_inconclusive,
            "Error": self._in.canary.on_error,
        }
        while True:
            verdict = await self._one_analysis()
            if verdict is None or verdict.phase == "Successful":
                self._set_phase("progressing")
                return None
            if pause_on.get(verdict.phase) != "pause":
                return self._abort_reason() if self._abort else verdict.reason
            if not workflow.patched(EARLY_PROMOTE):
                self._skip_pause = False
            self._resumed = False
            self._set_phase("paused", f"analysis {verdict.phase.lower()}: {verdict.reason}")
            await workflow.wait_condition(
                lambda: (
                    self._skip_pause
                    or self._resumed
                    or self._full_promote
                    or self._abort is not None
                )
            )
            if self._abort:
                return self._abort_reason()
            if self._skip_pause or self._full_promote:
                self._skip_pause = False
                self._set_phase("progressing")
                return None

    async def _one_analysis(self) -> AnalysisOutcome | None:
        """Measure every interval until decided; None when a full promote cut it short."""
        if self._in.canary.judge == "sequential":
            return await self._judged_analysis()
        spec = self._in.canary.analysis
        interval = timedelta(seconds=spec.interval_seconds)
        run: list[Measurement] = []
        # A hard cap so a run that never decides still ends (as Inconclusive).
        rounds = spec.count + spec.inconclusive_limit + spec.consecutive_error_limit + 10
        self._set_phase("analysing")
        for _ in range(rounds):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._abort is not None or self._full_promote, timeout=interval
                )
            if self._abort:
                return AnalysisOutcome("Failed", self._abort_reason())
            if self._full_promote:
                return None
            run += await self._measure_all()
            self._analysis = decide(spec, run)
            self._publish()
            if self._analysis.phase != "Running":
                return self._analysis
        return AnalysisOutcome(
            "Inconclusive", f"the analysis did not decide within {rounds} measurements"
        )

    async def _judged_analysis(self) -> AnalysisOutcome | None:
        """brewline.judge on the router's counts, one window per interval, at most `count`.

        A rollback may come from all the canary's windows (the judge's false rollback bound
        holds at any stopping time, so evidence from earlier steps counts); a step passes
        on its own windows only, so every weight has to show the canary harmless.
        """
        cfg = self._in.canary
        spec = cfg.analysis
        router, namespace, prometheus_url = self._metrics_source()
        names = query_vars(
            self._in.environment,
            self._in.service,
            self._in.version,
            spec.interval_seconds,
            router=router,
            namespace=namespace,
        )
        request = CountWindowInput(
            names["canary"],
            names["stable"],
            spec.interval_seconds,
            prometheus_url=prometheus_url,
            router=router,
            namespace=namespace,
        )
        step_windows: list[Window] = []
        errors_in_a_row = 0
        self._set_phase("analysing")
        for round_ in range(spec.count):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._abort is not None or self._full_promote,
                    timeout=timedelta(seconds=spec.interval_seconds),
                )
            if self._abort:
                return AnalysisOutcome("Failed", self._abort_reason())
            if self._full_promote:
                return None
            counts = await self._count(request)
            if counts.error:
                errors_in_a_row += 1
                if errors_in_a_row > spec.consecutive_error_limit:
                    return AnalysisOutcome(
                        "Error",
                        f"{errors_in_a_row} windows in a row could not be counted "
                        f"(last: {counts.error}) exceeds consecutive_error_limit "
                        f"{spec.consecutive_error_limit}",
                    )
                continue
            errors_in_a_row = 0
            window = Window(
                counts.canary_requests,
                counts.canary_errors,
                counts.stable_requests,
                counts.stable_errors,
                counts.canary_slow,
                counts.stable_slow,
                counts.latency_bound_seconds,
            )
            step_windows.append(window)
            self._windows = [*self._windows, window][-500:]  # bounded workflow state
            overall = judge(cfg.sequential, self._windows)
            if overall.phase == "Failed":
                self._verdict = overall
                self._publish()
                return AnalysisOutcome("Failed", overall.reason)
            self._verdict = judge(cfg.sequential, step_windows, final=round_ == spec.count - 1)
            self._publish()
            if self._verdict.phase != "Running":
                return AnalysisOutcome(self._verdict.phase, self._verdict.reason)
        return AnalysisOutcome("Inconclusive", "the analysis ended without a verdict")

    async def _count(self, request: CountWindowInput) -> CountWindowResult:
        try:
            return await opts.call(
                "count_window",
                request,
                CountWindowResult,
                opts.METRIC_QUERY,
                f"count window of {self._in.service}",
            )
        except ActivityError as exc:  # the worker could not even ask: an Error, never a pass
            return CountWindowResult(error=failure_reason(exc))

    def _metrics_source(self) -> tuple[str, str, str]:
        """(router, namespace, Prometheus URL) whose metrics describe this canary.

        A canary without a Kubernetes spec (the local platform) reads Traefik's series
        from the worker's Prometheus ("" URL), exactly as before the patch, so its
        histories replay unchanged; the patch is asked only for Kubernetes canaries.
        """
        spec = self._in.kubernetes
        if spec is None or not workflow.patched(ROUTER_METRICS):
            return TRAEFIK, "", ""
        return INGRESS_NGINX, spec.namespace, spec.prometheus_url

    async def _measure_all(self) -> list[Measurement]:
        spec = self._in.canary.analysis
        router, namespace, prometheus_url = self._metrics_source()
        names = query_vars(
            self._in.environment,
            self._in.service,
            self._in.version,
            spec.interval_seconds,
            router=router,
            namespace=namespace,
        )
        count_query = REQUEST_COUNT if router == TRAEFIK else request_count_query(router)
        requests = await self._query(render_query(count_query, **names), "requests", prometheus_url)
        count = requests.value if not requests.error else None
        results = await asyncio.gather(
            *(
                self._query(self._render(metric, router, namespace), metric.name, prometheus_url)
                for metric in spec.metrics
            )
        )
        now = workflow.now()
        taken = [
            classify(
                metric,
                result.value,
                result.error,
                result.at or now,
                requests=count,
                min_requests=spec.min_requests,
            )
            for metric, result in zip(spec.metrics, results, strict=True)
        ]
        self._measurements = (self._measurements + taken)[-200:]  # bounded workflow state
        return taken

    def _render(self, metric: MetricSpec, router: str, namespace: str) -> str:
        return render_metric(
            metric,
            environment=self._in.environment,
            service=self._in.service,
            version=self._in.version,
            interval_seconds=self._in.canary.analysis.interval_seconds,
            router=router,
            namespace=namespace,
        )

    async def _query(self, query: str, name: str, prometheus_url: str = "") -> MetricQueryResult:
        try:
            return await opts.call(
                "query_metric",
                MetricQueryInput(query, prometheus_url),
                MetricQueryResult,
                opts.METRIC_QUERY,
                f"measure {name}",
            )
        except ActivityError as exc:  # the worker could not even ask: an Error, never a pass
            return MetricQueryResult(value=None, samples=0, error=failure_reason(exc))

    def _step_text(self, step: CanaryStep) -> str:
        done = f"step {self._step}/{len(self._in.canary.steps)} done"
        if step.kind == "set_weight":
            return f"{done}: canary at {step.weight}%"
        if step.kind == "analysis" and self._analysis is not None:
            return f"{done}: analysis {self._analysis.phase} at {self._weight}%"
        return f"{done}: {step.kind} at {self._weight}%"

    async def _notify(self, event: str, what: str) -> None:
        inp = self._in
        await notify(
            inp.notify_webhook,
            inp.release_id,
            event,
            f"{inp.service} {inp.version} in {inp.environment}: {what}",
            service=inp.service,
            version=inp.version,
            environment=inp.environment,
            weight=f"{self._weight}%",
        )

    # ------------------------------------------------------------------ load
    async def _keep_load(self) -> None:
        """Traffic for the canary on the local platform, in chunks, until cancelled."""
        load = self._in.canary.load
        while True:
            try:
                await opts.call(
                    "generate_load",
                    LoadInput(
                        self._in.release_id,
                        self._in.environment,
                        self._in.service,
                        load.path,
                        load.rate_per_second,
                        load.concurrency,
                        LOAD_CHUNK_SECONDS,
                    ),
                    LoadResult,
                    opts.LOAD_OWN_QUEUE if workflow.patched(LOAD_QUEUE) else opts.LOAD,
                    f"load {self._in.service} in {self._in.environment}",
                )
            except ActivityError as exc:
                if is_cancelled_exception(exc):
                    raise  # the canary ended: stop, do not start another chunk
                # Asked to stop, the chunk may still end otherwise: a worker killed while
                # the canary ends never answers the cancellation, so the attempt ends by its
                # heartbeat timeout. That is a stop too; another chunk would be waited for
                # by the canary's end for ever.
                if self._load_stopping and workflow.patched(LOAD_STOPS_WHEN_ASKED):
                    raise asyncio.CancelledError() from exc
                workflow.logger.warning("load generator stopped: %s", failure_reason(exc))
                await workflow.sleep(timedelta(seconds=5))

    async def _end_load(self, load: asyncio.Task[None] | None) -> None:
        if load is None or load.done():
            return
        self._load_stopping = True
        load.cancel()
        with contextlib.suppress(asyncio.CancelledError, ActivityError):
            await load

    # ------------------------------------------------------------------ the end
    async def _roll_back_now(self, load: asyncio.Task[None] | None) -> None:
        """Weight 0 to the canary at once; the load generator is stopped meanwhile (its
        cancellation waits for a heartbeat, which must not hold the rollback back)."""
        if workflow.patched("rollback-before-load-stops"):
            await asyncio.gather(self._roll_back(), self._end_load(load))
        else:  # canaries that started before this change stop the load first
            await self._end_load(load)
            await self._roll_back()

    async def _roll_back(self) -> None:
        self._set_phase("rolling-back")
        self._traffic = await opts.call(
            "rollback_canary",
            self._end_input(),
            TrafficState,
            self._rollout(opts.RESTORE),
            f"roll back canary {self._in.service} {self._in.version}",
        )
        self._weight = 0
        self._set_phase("rolled-back")

    def _rollout(self, options: opts.ActivityOptions) -> opts.ActivityOptions:
        spec = self._in.kubernetes
        return opts.for_rollout(options, spec.timeout_seconds if spec else None)

    def _end_input(self) -> CanaryEndInput:
        return CanaryEndInput(
            self._in.release_id,
            self._in.environment,
            self._in.target,
            self._in.service,
            self._in.kubernetes,
        )

    def _abort_reason(self) -> str:
        assert self._abort is not None
        why = f": {self._abort.reason}" if self._abort.reason else ""
        return f"aborted by {self._abort.actor}{why}"

    # ------------------------------------------------------------------ people
    # Handlers are async: a signed promote or abort is verified by an activity first.
    @workflow.update(name="control")
    async def control(self, request: c.CanaryControl) -> c.ControlRecord:
        return await self._apply_checked(request)

    @control.validator
    def _validate_control(self, request: c.CanaryControl) -> None:
        why = self._refusal(request)
        if why:
            raise ValueError(why)

    @workflow.signal(name="promote")
    async def promote(self, request: c.CanaryControl) -> None:
        full = request.action == c.PROMOTE_FULL
        action = c.PROMOTE_FULL if full else c.PROMOTE
        await self._apply_checked(self._as(request, action, ""))

    @workflow.signal(name="pause")
    async def pause(self, request: c.CanaryControl) -> None:
        await self._apply_checked(self._as(request, c.PAUSE, request.reason))

    @workflow.signal(name="resume")
    async def resume(self, request: c.CanaryControl) -> None:
        await self._apply_checked(self._as(request, c.RESUME, request.reason))

    @workflow.signal(name="abort")
    async def abort(self, request: c.CanaryControl) -> None:
        await self._apply_checked(self._as(request, c.ABORT, request.reason))

    @staticmethod
    def _as(request: c.CanaryControl, action: str, reason: str) -> c.CanaryControl:
        return c.CanaryControl(request.actor, action, reason, request.statement, request.signature)

    async def _apply_checked(self, request: c.CanaryControl) -> c.ControlRecord:
        """`_apply` once a signed action's statement and signature are checked. Pause and
        resume need no signature (stopping is always safe; a resume only lets the
        analysis go on deciding), but one that carries a signature has it checked."""
        if not self._signed_controls():
            return self._apply(request)
        why = self._refusal(request)
        if why:
            return self._apply(request)  # records the refusal
        checked = await check(
            self._in.approval,
            self._in.source,
            Expected(
                release_id=self._in.release_id,
                stage=canary_stage(self._in.environment, self._in.service),
                version=self._in.version,
                decision=request.action,
                approver=request.actor.strip(),
            ),
            request.statement,
            request.signature,
            required=request.action in c.SIGNED_ACTIONS,
        )
        if checked.refused:
            record = c.ControlRecord(
                request.actor, request.action, workflow.now(), request.reason, checked.refused
            )
            self._controls.append(record)
            return record
        return self._apply(request, checked.signed)

    def _signed_controls(self) -> bool:
        """Whether this run checks signatures (patched: the first call decides, at start)."""
        return workflow.patched(SIGNED_APPROVALS)

    async def _handlers_finished(self) -> None:
        if self._signed_controls():
            await workflow.wait_condition(workflow.all_handlers_finished)

    def _refusal(self, request: c.CanaryControl) -> str | None:
        if request.action not in c.ACTIONS:
            return f"action {request.action!r} is not one of {', '.join(c.ACTIONS)}"
        if self._phase in ("promoting", "promoted", "rolling-back", "rolled-back"):
            return f"the canary is {self._phase}; nothing left to {request.action}"
        if request.action in (c.PAUSE, c.ABORT) and request.actor.strip() == self._in.initiator:
            return None  # stopping is always safe: the initiator may pause or abort their canary
        # everything else follows the approval gate's rules (listed approver, no self-approval)
        return refusal(self._in.approval, self._in.initiator, request.actor, True, request.reason)

    def _apply(self, request: c.CanaryControl, signed: str = "") -> c.ControlRecord:
        record = c.ControlRecord(
            request.actor, request.action, workflow.now(), request.reason, signed=signed
        )
        why = self._refusal(request)
        if why:
            record.refused = why
            self._controls.append(record)
            return record
        self._controls.append(record)
        if request.action == c.PROMOTE:
            self._skip_pause = True
            self._manual_pause = False
        elif request.action == c.PROMOTE_FULL:
            self._full_promote = True
            self._manual_pause = False
        elif request.action == c.PAUSE:
            self._manual_pause = True
        elif request.action == c.RESUME:
            self._manual_pause = False
            self._resumed = True
        elif request.action == c.ABORT:
            self._abort = record
        self._publish()
        return record

    # ------------------------------------------------------------------ following it
    @workflow.query(name="status")
    def status(self) -> c.CanaryStatus:
        steps = self._in.canary.steps
        latest: dict[str, Measurement] = {}
        for m in self._measurements:
            latest[m.metric] = m
        return c.CanaryStatus(
            release_id=self._in.release_id,
            environment=self._in.environment,
            service=self._in.service,
            version=self._in.version,
            phase=self._phase,
            step=self._step,
            steps=len(steps),
            step_kind=steps[self._step].kind if self._step < len(steps) else "",
            weight=self._weight,
            paused_reason=self._paused_reason,
            analysis=self._analysis,
            last_measurements=list(latest.values()),
            controls=list(self._controls),
            reason=self._reason,
            judge=self._verdict,
        )

    def _set_phase(self, phase: str, paused_reason: str = "") -> None:
        self._phase = phase
        self._paused_reason = paused_reason
        self._publish()

    def _publish(self) -> None:
        """The UI's current details: step, weight and the newest measurement per metric."""
        status = self.status()
        lines = [
            f"**{status.phase}** {self._in.service} {self._in.version} in "
            f"{self._in.environment}: step {min(status.step + 1, status.steps)}/{status.steps} "
            f"({status.step_kind or 'done'}), canary weight {status.weight}%",
        ]
        if self._in.approval.allow_unsigned:
            lines.append(f"**{UNSIGNED_NOTICE}**")
        if status.paused_reason:
            lines.append(f"paused: {status.paused_reason}")
        for m in status.last_measurements:
            value = "no data" if m.value is None else f"{m.value:.4g}"
            lines.append(f"- {m.metric}: {m.phase} ({value} {m.condition} {m.threshold:g})")
        if self._analysis and self._analysis.phase not in ("Running", "Successful"):
            lines.append(f"analysis {self._analysis.phase}: {self._analysis.reason}")
        if status.judge is not None:
            lines.append(f"judge {status.judge.phase}: {status.judge.reason}")
        workflow.set_current_details("\n".join(lines))
