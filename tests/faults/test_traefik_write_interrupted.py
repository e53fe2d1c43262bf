"""Fault: the route writer dies half way through replacing a Traefik route file.

Traefik (the local platform's, on free 127.0.0.1 ports, stopped by PID) routes
`/api-gateway` to an "old" backend; then a writer process replacing that route with a
"new" backend is SIGKILLed mid-write (half the YAML in its temp file) or just before
its rename, or the rename itself fails in this process (the module's `os.replace`
seam). Each time the previous config must stay in force: the route file is byte for
byte what it was, Traefik's API shows the old route, and a real request through the
entry point reaches the old backend. The next write then goes through.

"Stays in force" is checked after a barrier, not a sleep: another route file is
written and confirmed, and Traefik re-reads the whole directory on every change, so
by then it has seen whatever the dead writer left behind.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import activities.traefik as traefik
from activities.traefik import Route, TraefikRoutes
from brewline.platform import REPO_ROOT, PlatformSettings
from local.platform import LocalPlatform

ENV = "staging"
SERVICE = "api-gateway"
DEADLINE = 20.0

# The writer process: TraefikRoutes.write(route to `url`), stopped where `point` says
# (it writes `marker` there and waits for its SIGKILL):
#   mid-write      half of the YAML is in the temp file
#   before-rename  the temp file is complete, os.replace is next
WRITER = """
import os, sys, time
from pathlib import Path
import activities.traefik as traefik

point, marker, dynamic_dir, api_url, env, service, url = sys.argv[1:]

def hang():
    Path(marker).write_text(point)
    while True:
        time.sleep(60)

class HalfThenHang:
    def __init__(self, handle):
        self.handle = handle
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        return False
    def write(self, text):
        self.handle.write(text[: len(text) // 2])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        hang()

if point == "mid-write":
    real_fdopen = os.fdopen
    os.fdopen = lambda fd, mode: HalfThenHang(real_fdopen(fd, mode))
else:
    os.replace = lambda src, dst: hang()
routes = traefik.TraefikRoutes(Path(dynamic_dir), api_url)
routes.write(traefik.Route(env, service, url))
raise SystemExit("the writer was not stopped at " + point)
"""


@dataclass
class Backend:
    url: str
    process: subprocess.Popen[str]


@dataclass
class Routing:
    settings: PlatformSettings
    routes: TraefikRoutes
    old: Backend
    new: Backend

    def get(self, path: str) -> str:
        """GET through the environment's entry point, as a user would (no proxy)."""
        url = f"{self.settings.entrypoint_url(ENV)}{path}"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=5) as response:
            return str(response.read().decode())


def start_backend(folder: Path, name: str) -> Backend:
    """`python -m http.server` on a free loopback port, serving /who -> `name`."""
    folder.mkdir(parents=True)
    (folder / "who").write_text(name)
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1"],
        cwd=folder,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 41234 (...)"
    if "port" not in line:
        stop(process)
        raise RuntimeError(f"http.server did not start: {line!r}")
    return Backend(f"http://127.0.0.1:{line.split(' port ')[1].split()[0]}", process)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def routing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routing]:
    home = tmp_path_factory.mktemp("traefik-faults")
    settings = PlatformSettings(home=str(home / "home"))
    platform = LocalPlatform(settings)
    backends: list[Backend] = []
    try:
        platform.up(["traefik"], free_ports=True)
        backends.append(start_backend(home / "old", "old"))
        backends.append(start_backend(home / "new", "new"))
        routes = TraefikRoutes(settings.traefik_dynamic_dir, settings.traefik_api_url)
        yield Routing(settings, routes, *backends)
    finally:
        for backend in backends:
            stop(backend.process)
        platform.down()


async def route_to_old(routing: Routing) -> tuple[Route, bytes]:
    """The route in force before each fault: the old backend; and its file's bytes."""
    old = Route(ENV, SERVICE, routing.old.url)
    routing.routes.write(old)
    await routing.routes.confirm(old)
    assert routing.get(f"/{SERVICE}/who") == "old"
    return old, routing.routes.path(ENV, SERVICE).read_bytes()


async def barrier(routing: Routing, name: str) -> None:
    """Write and confirm another route: Traefik has re-read the directory since."""
    other = Route(ENV, name, routing.new.url)
    routing.routes.write(other)
    await routing.routes.confirm(other)


async def assert_old_in_force(routing: Routing, old: Route, old_bytes: bytes) -> None:
    assert routing.routes.path(ENV, SERVICE).read_bytes() == old_bytes
    assert routing.routes.read(ENV, SERVICE) == old
    assert await routing.routes.applied(ENV, SERVICE) == old
    assert routing.get(f"/{SERVICE}/who") == "old"


async def assert_next_write_goes_through(routing: Routing) -> None:
    new = Route(ENV, SERVICE, routing.new.url)
    routing.routes.write(new)
    await routing.routes.confirm(new)
    assert routing.routes.read(ENV, SERVICE) == new
    assert routing.get(f"/{SERVICE}/who") == "new"


def temp_files(routing: Routing) -> list[Path]:
    return sorted(routing.settings.traefik_dynamic_dir.glob(f".{ENV}-{SERVICE}.*.tmp"))


@pytest.mark.parametrize("point", ["mid-write", "before-rename"])
async def test_a_writer_killed_before_its_rename_leaves_the_old_route_in_force(
    routing: Routing, tmp_path: Path, point: str
) -> None:
    old, old_bytes = await route_to_old(routing)
    leftovers_before = temp_files(routing)
    marker = tmp_path / "stopped-at"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            point,
            str(marker),
            str(routing.settings.traefik_dynamic_dir),
            routing.settings.traefik_api_url,
            ENV,
            SERVICE,
            routing.new.url,
        ],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + DEADLINE
        while not marker.exists():
            assert writer.poll() is None, f"the writer exited with {writer.returncode}"
            assert time.monotonic() < deadline, f"the writer never reached {point}"
            time.sleep(0.02)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL

    # what the dead writer left: its temp file, with half or all of the new route
    left = [p for p in temp_files(routing) if p not in leftovers_before]
    assert len(left) == 1
    scratch = TraefikRoutes(tmp_path / "scratch", routing.settings.traefik_api_url)
    scratch.write(Route(ENV, SERVICE, routing.new.url))
    full = scratch.path(ENV, SERVICE).read_text()
    expected = full[: len(full) // 2] if point == "mid-write" else full
    assert left[0].read_text() == expected

    await barrier(routing, f"barrier-{point}")
    await assert_old_in_force(routing, old, old_bytes)
    await assert_next_write_goes_through(routing)
    assert left[0].exists()  # young: it could be a live writer's, so it is kept
    # a write sweeps the dead writer's file once it is older than any live write
    an_hour_ago = time.time() - 3600
    os.utime(left[0], (an_hour_ago, an_hour_ago))
    routing.routes.write(Route(ENV, SERVICE, routing.new.url))
    assert not left[0].exists()


async def test_a_failed_rename_leaves_the_old_route_in_force_and_no_temp_file(
    routing: Routing, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, old_bytes = await route_to_old(routing)
    leftovers_before = temp_files(routing)

    def no_space(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), dst)

    with monkeypatch.context() as patched:
        patched.setattr(traefik.os, "replace", no_space)
        with pytest.raises(OSError, match="No space left on device"):
            routing.routes.write(Route(ENV, SERVICE, routing.new.url))
    assert temp_files(routing) == leftovers_before  # the writer cleaned up after itself

    await barrier(routing, "barrier-rename-failed")
    await assert_old_in_force(routing, old, old_bytes)
    await assert_next_write_goes_through(routing)
