"""Deploy activities: one interface, several targets (local podman+Traefik now, Kubernetes later).

The workflow names the target of each environment (`EnvironmentConfig.target`); these
activities look it up and hand the input over, so a new target is one more entry in
the dict the worker passes in. Besides plain deploys, a target runs canaries: a new
version beside stable that gets a growing share of requests until it is promoted or
rolled back.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from brewline.model import (
    CanaryDeployInput,
    CanaryEndInput,
    DeployInput,
    DeployResult,
    DescribeInput,
    DescribeResult,
    RestoreInput,
    RestoreResult,
    SetWeightInput,
    SmokeTestInput,
    SmokeTestResult,
    TrafficState,
)


class DeployTarget(Protocol):
    """Where services run. Every method is idempotent: a retry must be harmless."""

    async def describe(self, input: DescribeInput) -> DescribeResult:
        """What runs now; the workflow records it before changing anything."""
        ...

    async def deploy(self, input: DeployInput) -> DeployResult:
        """Make the service run the image; report what ran before."""
        ...

    async def smoke_test(self, input: SmokeTestInput) -> SmokeTestResult:
        """Check through the environment's router that the expected version answers."""
        ...

    async def restore(self, input: RestoreInput) -> RestoreResult:
        """Put `previous` back, or remove the service when it is None."""
        ...

    async def describe_traffic(self, input: DescribeInput) -> TrafficState:
        """Who serves as stable and as canary, and the canary's share of requests."""
        ...

    async def deploy_canary(self, input: CanaryDeployInput) -> TrafficState:
        """Start the image beside stable as the canary, ready and at weight 0."""
        ...

    async def set_canary_weight(self, input: SetWeightInput) -> TrafficState:
        """Send `weight` percent (0-100) of requests to the canary; InvalidInput without one."""
        ...

    async def promote_canary(self, input: CanaryEndInput) -> TrafficState:
        """The canary's version becomes stable at 100%; the old stable goes."""
        ...

    async def rollback_canary(self, input: CanaryEndInput) -> TrafficState:
        """Canary to 0% at once, then removed; stable untouched; no canary is a no-op."""
        ...


class DeployActivities:
    """The deploy activities, dispatching on the input's `target` field."""

    def __init__(self, targets: Mapping[str, DeployTarget]) -> None:
        self.targets = dict(targets)

    def _target(self, name: str) -> DeployTarget:
        try:
            return self.targets[name]
        except KeyError:
            raise ApplicationError(
                f"deploy target {name!r} is not configured on this worker "
                f"(known: {', '.join(sorted(self.targets)) or 'none'}); fix `target` of the "
                "environment in pipeline.yaml or start a worker that has it",
                type="InvalidConfig",
                non_retryable=True,
            ) from None

    @activity.defn(name="describe_service")
    async def describe_service(self, input: DescribeInput) -> DescribeResult:
        return await self._target(input.target).describe(input)

    @activity.defn(name="deploy_service")
    async def deploy_service(self, input: DeployInput) -> DeployResult:
        return await self._target(input.target).deploy(input)

    @activity.defn(name="smoke_test")
    async def smoke_test(self, input: SmokeTestInput) -> SmokeTestResult:
        return await self._target(input.target).smoke_test(input)

    @activity.defn(name="restore_service")
    async def restore_service(self, input: RestoreInput) -> RestoreResult:
        return await self._target(input.target).restore(input)

    @activity.defn(name="describe_traffic")
    async def describe_traffic(self, input: DescribeInput) -> TrafficState:
        return await self._target(input.target).describe_traffic(input)

    @activity.defn(name="deploy_canary")
    async def deploy_canary(self, input: CanaryDeployInput) -> TrafficState:
        return await self._target(input.target).deploy_canary(input)

    @activity.defn(name="set_canary_weight")
    async def set_canary_weight(self, input: SetWeightInput) -> TrafficState:
        return await self._target(input.target).set_canary_weight(input)

    @activity.defn(name="promote_canary")
    async def promote_canary(self, input: CanaryEndInput) -> TrafficState:
        return await self._target(input.target).promote_canary(input)

    @activity.defn(name="rollback_canary")
    async def rollback_canary(self, input: CanaryEndInput) -> TrafficState:
        return await self._target(input.target).rollback_canary(input)
