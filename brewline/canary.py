"""What the CanaryWorkflow takes, keeps and returns, and the manual controls people send it.

No `from __future__ import annotations` here: inside the workflow sandbox the string
annotations of these dataclasses did not resolve (NameError on CanaryConfig while
decoding the workflow input), real annotations do.
"""

from dataclasses import dataclass, field
from datetime import datetime

from brewline.analysis import AnalysisOutcome, Measurement
from brewline.canary_config import STEP_KINDS, CanaryConfig
from brewline.identity import (
    name_problems,
    validate_name,
    validate_person,
    validate_release_id,
    validate_version,
)
from brewline.judge import Verdict
from brewline.model import KNOWN_TARGETS, ApprovalConfig, KubernetesSpec, TrafficState

# What a person may do to a running canary (as `kubectl argo rollouts` offers).
PROMOTE, PROMOTE_FULL, PAUSE, RESUME, ABORT = "promote", "promote-full", "pause", "resume", "abort"
ACTIONS = (PROMOTE, PROMOTE_FULL, PAUSE, RESUME, ABORT)
# What must carry the actor's signature (brewline/signing.py). Pause and resume need none:
# a pause only stops, and a resume only lets the automated analysis go on deciding.
SIGNED_ACTIONS = (PROMOTE, PROMOTE_FULL, ABORT)


@dataclass
class CanaryInput:
    release_id: str
    environment: str
    target: str
    service: str
    version: str
    image: str
    canary: CanaryConfig
    approval: ApprovalConfig  # who may promote, pause, resume or abort
    initiator: str
    smoke_path: str = "/health"
    env: dict[str, str] = field(default_factory=dict)  # the release's container env
    notify_webhook: str = ""  # Slack-compatible webhook for step/promoted/rolled-back
    kubernetes: KubernetesSpec | None = None  # target kubernetes: the filled-in spec
    source: str = ""  # the release's source tree: where approval.allowed_signers is


@dataclass
class CanaryControl:
    """Payload of the `control` update and of the promote/pause/resume/abort signals."""

    actor: str
    action: str = PROMOTE  # one of ACTIONS
    reason: str = ""
    statement: str = ""  # the signed text (brewline.signing.Statement.to_text())
    signature: str = ""  # armored SSH signature over `statement` (ssh-keygen -Y sign)


@dataclass
class ControlRecord:
    actor: str
    action: str
    at: datetime
    reason: str = ""
    refused: str = ""  # why it was refused; empty when applied
    signed: str = ""  # who signed it and with what key, or "unsigned (allowed)"


@dataclass
class CanaryResult:
    outcome: str  # promoted or rolled-back
    reason: str
    traffic: TrafficState | None
    measurements: list[Measurement] = field(default_factory=list)


@dataclass
class CanaryStatus:
    release_id: str
    environment: str
    service: str
    version: str
    # starting, progressing, paused, analysing, promoting, promoted, rolling-back, rolled-back
    phase: str
    step: int  # index into steps, 0-based; == len(steps) once all ran
    steps: int
    step_kind: str
    weight: int
    paused_reason: str
    analysis: AnalysisOutcome | None
    last_measurements: list[Measurement]  # the newest per metric
    controls: list[ControlRecord]
    reason: str = ""
    judge: Verdict | None = None  # judge: sequential: the newest verdict and its numbers


def input_problems(inp: CanaryInput) -> list[str]:
    """What is wrong with a canary's input as the workflow receives it (empty: nothing).

    The release builds it from a checked request and pipeline; the canary checks again,
    because anyone with access to the namespace can start it directly.
    """
    problems = name_problems(
        lambda: validate_release_id(inp.release_id),
        lambda: validate_version(inp.version),
        lambda: validate_name("service", inp.service),
        lambda: validate_name("environment", inp.environment),
        lambda: validate_person("initiator", inp.initiator),
    )
    if inp.target not in KNOWN_TARGETS:
        problems.append(f"target {inp.target!r} is not allowed: {', '.join(KNOWN_TARGETS)}")
    elif inp.target == "kubernetes" and inp.kubernetes is None:
        problems.append("target 'kubernetes' needs its kubernetes spec")
    if not inp.canary.steps:
        problems.append("a canary needs at least one step")
    for n, step in enumerate(inp.canary.steps, 1):
        if step.kind not in STEP_KINDS:
            problems.append(f"step {n}: kind {step.kind!r} is not one of {', '.join(STEP_KINDS)}")
        elif step.kind == "set_weight" and not 0 <= step.weight <= 100:
            problems.append(f"step {n}: weight {step.weight!r} is not a percentage (0-100)")
        elif step.kind == "pause" and step.pause_seconds is not None and step.pause_seconds < 0:
            problems.append(f"step {n}: pause of {step.pause_seconds!r} s is negative")
    return problems
