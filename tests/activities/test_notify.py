"""Notifications reach a real HTTP server on loopback; a failed webhook never raises."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from temporalio.testing import ActivityEnvironment

from activities.notify import NotifyActivities
from activities.secrets import SecretResolver
from brewline.model import NotifyInput


class Hook(BaseHTTPRequestHandler):
    received: list[dict[str, object]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Hook.received.append(json.loads(self.rfile.read(length)))
        self.send_response(Hook.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    Hook.received = []
    Hook.status = 200
    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def event(url: str) -> NotifyInput:
    return NotifyInput(
        "release-go-coffee-api-gateway-1.4.0",
        "rolled-back",
        "api-gateway 1.4.0 rolled back: request-success-rate 0.8 < 0.99",
        url,
        {"environment": "production"},
    )


async def test_delivers_slack_compatible_json(webhook: str) -> None:
    result = await ActivityEnvironment().run(NotifyActivities().notify, event(webhook))
    assert result.delivered and result.status_code == 200
    [body] = Hook.received
    assert body["text"] == "api-gateway 1.4.0 rolled back: request-success-rate 0.8 < 0.99"
    [attachment] = body["attachments"]  # type: ignore[misc]
    assert attachment["title"] == "release-go-coffee-api-gateway-1.4.0"
    assert {"title": "environment", "value": "production", "short": True} in attachment["fields"]
    assert attachment["color"] == "#d00000"


async def test_a_failing_webhook_is_reported_not_raised(webhook: str) -> None:
    Hook.status = 500
    result = await ActivityEnvironment().run(NotifyActivities().notify, event(webhook))
    assert not result.delivered and result.status_code == 500
    assert "500" in result.error


async def test_an_unreachable_webhook_is_reported_not_raised() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = await ActivityEnvironment().run(
        NotifyActivities(timeout=2).notify, event(f"http://127.0.0.1:{port}/hook")
    )
    assert not result.delivered and "unreachable" in result.error


async def test_a_non_http_url_is_refused_without_a_request() -> None:
    result = await ActivityEnvironment().run(NotifyActivities().notify, event("file:///etc/passwd"))
    assert not result.delivered and "is not http(s)" in result.error


async def test_a_webhook_given_by_reference_is_resolved_and_never_reported(webhook: str) -> None:
    """pipeline.yaml names the URL by reference; the URL (a credential) stays out of results."""
    resolver = SecretResolver(environ={"BREWLINE_WEBHOOK_URL": webhook})
    acts = NotifyActivities(timeout=2, secrets=resolver)
    sent = await ActivityEnvironment().run(acts.notify, event("env:BREWLINE_WEBHOOK_URL"))
    assert sent.delivered and len(Hook.received) == 1

    Hook.status = 500
    failed = await ActivityEnvironment().run(acts.notify, event("env:BREWLINE_WEBHOOK_URL"))
    assert not failed.delivered and webhook not in failed.error

    unset = await ActivityEnvironment().run(acts.notify, event("env:NOT_SET_ANYWHERE"))
    assert not unset.delivered and "NOT_SET_ANYWHERE" in unset.error
