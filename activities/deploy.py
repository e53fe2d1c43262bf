"""Deploy activities: one interface, several targets (local podman+Traefik now, Kubernetes later).

The workflow names the target of each environment (`EnvironmentConfig.target`); these
activities look it up and hand the input over, so a new target is one more entry in
the dict the worker passes in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from temporalio import activity
from temporalio.exceptions import ApplicationError

from brewline.model import (
    DeployInput,
    DeployResult,
    DescribeInput,
    DescribeResult,
    RestoreInput,
    RestoreResult,
    SmokeTestInput,
    SmokeTestResult,
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
