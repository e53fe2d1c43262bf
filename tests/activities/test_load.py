"""generate_load: the real hey through the real Traefik to a small HTTP server of the test's own.

The server counts what it answers, so the counts hey reports are checked against the
other end of the wire; cancellation must leave no hey process behind.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.load import NO_ANSWER, LoadActivities, parse_hey_summary
from activities.traefik import Route, TraefikRoutes
from brewline.model import LoadInput
from brewline.platform import LOOPBACK, PlatformSettings

ENV = "staging"
RELEASE = "rel-test-load"


class CountingServer:
    """A stdlib HTTP server on a free loopback port: /ok answers 200, /mixed answers 503
    to every fourth request and 200 otherwise; it counts the status codes it sent."""

    def __init__(self) -> None:
        self.answered: Counter[str] = Counter()
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as hey expects

            def do_GET(self) -> None:
                with outer.lock:
                    seen = sum(outer.answered.values())
                    if self.path == "/ok":
                        code = 200
                    elif self.path == "/mixed":
                        code = 503 if seen % 4 == 3 else 200
                    else:
                        code = 404
                    outer.answered[str(code)] += 1
                body = b'{"status": "ok"}'
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def total(self) -> int:
        with self.lock:
            return sum(self.answered.values())


@pytest_asyncio.fixture
async def routed(local_platform: PlatformSettings) -> AsyncIterator[tuple[str, CountingServer]]:
    """A counting server routed as a fresh service of staging through Traefik."""
    service = f"load-{uuid.uuid4().hex[:6]}"
    server = CountingServer()
    server.thread.start()
    routes = TraefikRoutes(local_platform.traefik_dynamic_dir, local_platform.traefik_api_url)
    route = Route(ENV, service, server.url)
    try:
        routes.write(route)
        await routes.confirm(route)
        yield service, server
    finally:
        routes.remove(ENV, service)
        server.httpd.shutdown()
        server.httpd.server_close()


def load(service: str, path: str, rate: float, concurrency: int, seconds: int) -> LoadInput:
    return LoadInput(RELEASE, ENV, service, path, rate, concurrency, seconds)


def unused_port() -> int:
    """A loopback port that was free a moment ago, with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def hey_processes(needle: str) -> list[int]:
    """PIDs of live processes whose command line contains `needle` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle.encode() in cmdline and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


async def test_load_at_a_rate_reports_every_request_with_its_code(
    local_platform: PlatformSettings, routed: tuple[str, CountingServer]
) -> None:
    service, server = routed
    started = time.monotonic()
    result = await ActivityEnvironment().run(
        LoadActivities(local_platform).generate_load, load(service, "/ok", 20, 2, 3)
    )
    elapsed = time.monotonic() - started
    # 20 requests/s for 3 s; hey's ticker starts one tick late and its last tick may miss
    assert 54 <= result.requests <= 62, result
    assert result.status_codes == {"200": result.requests}
    assert result.requests == server.total()  # what the server saw, no more, no less
    assert 2.9 <= result.duration_seconds <= 4.0
    assert elapsed < 10


async def test_every_status_code_is_counted(
    local_platform: PlatformSettings, routed: tuple[str, CountingServer]
) -> None:
    service, server = routed
    result = await ActivityEnvironment().run(
        LoadActivities(local_platform).generate_load, load(service, "/mixed", 40, 4, 2)
    )
    assert result.status_codes == dict(server.answered)
    assert set(result.status_codes) == {"200", "503"}
    assert result.status_codes["503"] >= result.requests // 4 - 1
    assert result.requests == sum(result.status_codes.values()) == server.total()


async def test_requests_without_an_answer_count_as_errors(
    local_platform: PlatformSettings, tmp_path: Path
) -> None:
    # an entry point where nothing listens: every request is refused
    settings = dataclasses.replace(
        local_platform, home=str(tmp_path), entrypoints={ENV: unused_port()}
    )
    result = await ActivityEnvironment().run(
        LoadActivities(settings).generate_load, load("nothing", "/health", 10, 1, 1)
    )
    assert result.requests >= 5
    assert result.status_codes == {NO_ANSWER: result.requests}


async def test_cancelling_the_load_kills_hey(
    local_platform: PlatformSettings, routed: tuple[str, CountingServer]
) -> None:
    service, server = routed
    env = ActivityEnvironment()
    heartbeats: list[Any] = []
    env.on_heartbeat = lambda *details: heartbeats.extend(details)
    acts = LoadActivities(local_platform, heartbeat_every=0.2)
    needle = f"/{service}/ok"
    started = time.monotonic()
    task = asyncio.create_task(env.run(acts.generate_load, load(service, "/ok", 20, 2, 120)))

    deadline = time.monotonic() + 20
    while server.total() < 10 or not heartbeats:
        assert not task.done(), task
        assert time.monotonic() < deadline, "hey sent no requests within 20 s"
        await asyncio.sleep(0.05)
    assert len(hey_processes(needle)) == 1  # hey runs, and only one

    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 30  # cancelled, not run to its 120 s
    assert hey_processes(needle) == []  # pid included: the whole process group is gone
    sent = server.total()
    await asyncio.sleep(0.5)  # nothing left that could still send
    assert server.total() == sent


@pytest.mark.parametrize(
    ("change", "kind", "why"),
    [
        ({"rate_per_second": 0}, "InvalidInput", "above 0"),
        ({"rate_per_second": float("nan")}, "InvalidInput", "above 0"),
        ({"concurrency": 0}, "InvalidInput", "from 1 to"),
        ({"duration_seconds": 0}, "InvalidInput", "from 1 to"),
        ({"path": "health"}, "InvalidInput", "absolute path"),
        ({"path": "//example.com/x"}, "InvalidInput", "absolute path"),
        ({"path": "/a b"}, "InvalidInput", "absolute path"),
        ({"service": "Bad_Name"}, "InvalidInput", "Bad_Name"),
        ({"environment": "qa"}, "InvalidConfig", "'qa'"),
    ],
)
async def test_bad_input_is_refused_before_hey_runs(
    local_platform: PlatformSettings, change: dict[str, Any], kind: str, why: str
) -> None:
    bad = dataclasses.replace(load("svc", "/health", 10, 2, 5), **change)
    release = f"rel-bad-{uuid.uuid4().hex[:6]}"
    bad.release_id = release
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(LoadActivities(local_platform).generate_load, bad)
    assert caught.value.type == kind
    assert caught.value.non_retryable
    assert why in str(caught.value)
    assert not (local_platform.release_dir(release) / "load").exists()


def test_summary_parsing_of_hey_output() -> None:
    output = """$ hey -z 1s ...

Summary:
  Total:\t1.0115 secs
  Slowest:\t0.0000 secs
  Requests/sec:\t9.8863


Response time histogram:
  0.002 [1]\t|■■■■■


Latency distribution:
  10% in 0.0025 secs

Status code distribution:
  [200]\t7 responses
  [500]\t2 responses

Error distribution:
  [3]\tGet "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused
  [1]\tGet "http://127.0.0.1:1/": context deadline exceeded
"""
    summary = parse_hey_summary(output.splitlines())
    assert summary is not None
    assert summary.total_seconds == pytest.approx(1.0115)
    assert summary.status_codes == {"200": 7, "500": 2}  # the histogram's [1] is not a code
    assert sum(summary.errors.values()) == 4
    assert summary.requests == 13
    assert parse_hey_summary(["$ hey", "flag provided but not defined: -x"]) is None
