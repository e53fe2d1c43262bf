"""Fixtures shared by the activity tests: a real registry on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from brewline.platform import PlatformSettings
from local.platform import LocalPlatform


@pytest.fixture(scope="session")
def registry_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformSettings]:
    """Settings of a home whose docker-registry runs on a free port for the whole session.

    Started and stopped (by PID) by the local platform manager, exactly as `up` does it.
    """
    settings = PlatformSettings(home=str(tmp_path_factory.mktemp("registry-home")))
    platform = LocalPlatform(settings)
    platform.up(["registry"], free_ports=True)
    try:
        yield settings
    finally:
        platform.down()
