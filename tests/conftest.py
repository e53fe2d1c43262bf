"""Shared fixtures: Temporal test environments (offline: the servers come from the venv)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from brewline import search_attributes as sa
from brewline.platform import PlatformSettings, tool_path
from local.platform import LocalPlatform


@pytest_asyncio.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server: a 24 h approval timeout passes in well under a second."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=tool_path("temporal-test-server", "BREWLINE_TEST_SERVER")
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


async def register_search_attributes(client: Client) -> None:
    """The time-skipping server knows no custom search attributes until told."""
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in sa.ALL},
        )
    )


@pytest_asyncio.fixture(scope="session")
async def local_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real dev server on 127.0.0.1 (in memory), for updates, which time skipping stalls."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=tool_path("temporal", "BREWLINE_TEMPORAL"),
        search_attributes=list(sa.ALL),
        ip="127.0.0.1",
    )
    yield env
    await env.shutdown()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def local_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformSettings]:
    """Registry and Traefik of the local platform, on free ports in a temporary home.

    For deploy tests: podman storage, route files and logs all stay in that home, and
    `down` at the end removes the containers deployed there and stops both by PID.
    """
    settings = PlatformSettings(home=str(tmp_path_factory.mktemp("platform-home")))
    platform = LocalPlatform(settings)
    try:
        platform.up(["registry", "traefik"], free_ports=True)
        yield settings
    finally:
        platform.down()
