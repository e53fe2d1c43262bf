"""A worker process for benchmarks: the real ReleaseWorkflow, activities that do nothing.

    python -m bench.noop_worker --address 127.0.0.1:7233 --task-queue bench

Runs in its own process so the benchmark can read its resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from temporalio.client import Client

from tests.workflows.fakes import FakeWorld, new_worker


async def serve(address: str, task_queue: str) -> None:
    client = await Client.connect(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with new_worker(client, FakeWorld(), task_queue):
        print("ready", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))


if __name__ == "__main__":
    main()
