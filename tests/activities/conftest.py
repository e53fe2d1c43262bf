"""Fixtures shared by the activity tests: a real registry on a free loopback port."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from brewline.platform import PlatformSettings, default_home
from local.platform import LocalPlatform


@pytest.fixture(scope="session")
def registry_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PlatformSettings]:
    """Settings of a home whose docker-registry runs on a free port for the whole session.

    Started and stopped (by PID) by the local platform manager, exactly as `up` does it.
    The home's Go build cache is the shared one (`$BREWLINE_TEST_GOCACHE`, default the
    default home's `go/cache`): a cold build of net/http takes a minute on two cores,
    and Go's cache is content-addressed and safe to share between processes.
    """
    settings = PlatformSettings(home=str(tmp_path_factory.mktemp("registry-home")))
    shared_cache = Path(os.environ.get("BREWLINE_TEST_GOCACHE", default_home() / "go" / "cache"))
    shared_cache.mkdir(parents=True, exist_ok=True)
    (settings.home_path / "go").mkdir(parents=True)
    (settings.home_path / "go" / "cache").symlink_to(shared_cache, target_is_directory=True)
    platform = LocalPlatform(settings)
    platform.up(["registry"], free_ports=True)
    try:
        yield settings
    finally:
        platform.down()
