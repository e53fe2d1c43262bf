"""The brewline worker: runs release workflows and their activities on one task queue.

    python worker.py            # connects from TEMPORAL_* env vars (see brewline/connection.py)

SIGTERM or SIGINT stop polling, let running activities finish (up to the graceful
shutdown timeout), then exit; Temporal hands anything unfinished to the next worker.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.deploy import DeployActivities
from activities.golang import GoActivities
from activities.images import ImageActivities
from activities.kubernetes_target import KubernetesTarget
from activities.load import LoadActivities
from activities.local_target import LocalTarget
from activities.notify import NotifyActivities
from activities.prometheus import PrometheusActivities
from activities.semgrep import SemgrepActivities
from activities.ssh_signatures import SignatureActivities
from activities.terraform import TerraformActivities
from activities.trivy import TrivyActivities
from brewline.connection import ConnectionSettings, TemporalUnreachable, connect
from brewline.platform import PlatformSettings
from workflows import activity_options as opts
from workflows.canary import CanaryWorkflow
from workflows.release import ReleaseWorkflow

WORKFLOWS: Sequence[type] = (ReleaseWorkflow, CanaryWorkflow)
log = logging.getLogger("brewline.worker")


def build_activities(settings: PlatformSettings) -> list[Callable[..., Any]]:
    """Every activity the workflows call, wired to this machine's tools and platform."""
    go = GoActivities(settings)
    trivy = TrivyActivities(settings)
    semgrep = SemgrepActivities(settings)
    images = ImageActivities(settings)
    terraform = TerraformActivities(settings)
    # target names are what `environments.<env>.target` in pipeline.yaml says
    deploy = DeployActivities(
        {"local": LocalTarget(settings), "kubernetes": KubernetesTarget(settings)}
    )
    prometheus = PrometheusActivities(settings)
    load = LoadActivities(settings)
    return [
        go.run_go_tests,
        trivy.trivy_scan,
        semgrep.semgrep_scan,
        images.build_image,
        terraform.terraform_plan,
        terraform.terraform_apply,
        deploy.describe_service,
        deploy.deploy_service,
        deploy.smoke_test,
        deploy.restore_service,
        deploy.describe_traffic,
        deploy.deploy_canary,
        deploy.set_canary_weight,
        deploy.promote_canary,
        deploy.rollback_canary,
        prometheus.query_metric,
        prometheus.count_window,
        load.generate_load,
        NotifyActivities().notify,
        SignatureActivities(settings).verify_approval,
    ]


def build_load_activities(settings: PlatformSettings) -> list[Callable[..., Any]]:
    """The load generator alone, for the worker on the load queue."""
    return [LoadActivities(settings).generate_load]


def make_load_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    max_concurrent_activities: int = 32,
) -> Worker:
    """Polls `<task_queue>-load`: load generators hold a slot for a whole canary, so they
    get slots of their own and never starve the canaries' other activities."""
    return Worker(
        client,
        task_queue=task_queue + opts.LOAD_QUEUE_SUFFIX,
        activities=list(activities),
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=30),
    )


def make_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    max_concurrent_activities: int = 8,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=list(activities),
        max_concurrent_activities=max_concurrent_activities,
        graceful_shutdown_timeout=timedelta(seconds=30),
    )


async def serve(connection: ConnectionSettings, settings: PlatformSettings) -> None:
    client = await connect(connection)
    limit = int(os.environ.get("BREWLINE_MAX_ACTIVITIES", "8"))
    worker = make_worker(client, connection.task_queue, build_activities(settings), limit)
    load_limit = int(os.environ.get("BREWLINE_MAX_LOAD_ACTIVITIES", "32"))
    load_worker = make_load_worker(
        client, connection.task_queue, build_load_activities(settings), load_limit
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "worker polling %s on %s (namespace %s), at most %d activities at once, and %s%s "
        "for at most %d load generators",
        connection.task_queue,
        connection.address,
        connection.namespace,
        limit,
        connection.task_queue,
        opts.LOAD_QUEUE_SUFFIX,
        load_limit,
    )
    async with worker, load_worker:
        await stop.wait()
        log.info("shutting down: no new tasks, waiting for running activities")
    log.info("worker stopped")


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("BREWLINE_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(ConnectionSettings.from_env(), PlatformSettings.load()))
    except TemporalUnreachable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: the Temporal core can abort there (sdk-python#300).
    os._exit(code)
