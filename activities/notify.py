"""Release notifications to a Slack-compatible incoming webhook.

A notification is a courtesy, never a gate: the activity reports a failed delivery in
its result instead of raising, so a webhook that is down can never fail or hold up a
release. The payload is Slack's incoming-webhook JSON (`text` plus one attachment with
fields), which Mattermost, Rocket.Chat and most chat tools accept as well.

A webhook URL is a credential, so pipeline.yaml gives it as a secret reference
(`env:BREWLINE_WEBHOOK_URL`, `aws-secretsmanager:...`): the reference travels through
Temporal, and the URL is resolved here, registered for redaction and never reported.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.secrets import SecretResolver
from brewline.model import NotifyInput, NotifyResult

COLORS = {"rolled-back": "#d00000", "failed": "#d00000", "promoted": "#2eb67d"}


def payload(inp: NotifyInput) -> dict[str, object]:
    """Slack incoming-webhook JSON for one release event."""
    fields = [{"title": k, "value": v, "short": True} for k, v in inp.fields.items()]
    return {
        "text": inp.text,
        "attachments": [
            {
                "fallback": inp.text,
                "color": COLORS.get(inp.event, "#439fe0"),
                "title": inp.release_id,
                "fields": [{"title": "event", "value": inp.event, "short": True}, *fields],
            }
        ],
    }


class NotifyActivities:
    def __init__(self, timeout: float = 5.0, secrets: SecretResolver | None = None) -> None:
        self.timeout = timeout
        self.secrets = secrets or SecretResolver()

    @activity.defn(name="notify")
    async def notify(self, inp: NotifyInput) -> NotifyResult:
        url = inp.webhook_url
        if not url.startswith(("http://", "https://")):
            try:  # a secret reference (config.py allows only loopback URLs inline)
                url = await self.secrets.resolve("notify.webhook", inp.webhook_url)
            except ApplicationError as exc:
                return NotifyResult(False, error=exc.message)
            if not url.startswith(("http://", "https://")):
                return NotifyResult(
                    False,
                    error=f"webhook {inp.webhook_url!r} is not http(s) and does not name an "
                    "http(s) URL",
                )
        return await asyncio.to_thread(self._post, inp, url)

    def _post(self, inp: NotifyInput, url: str) -> NotifyResult:
        """POST the event; errors name the reference (`inp.webhook_url`), never the URL."""
        body = json.dumps(payload(inp)).encode()
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            url,
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return NotifyResult(True, response.status)
        except urllib.error.HTTPError as exc:
            return NotifyResult(False, exc.code, f"webhook answered {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return NotifyResult(False, 0, f"webhook {inp.webhook_url} unreachable: {reason}")
