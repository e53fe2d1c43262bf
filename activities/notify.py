"""Release notifications to a Slack-compatible incoming webhook.

A notification is a courtesy, never a gate: the activity reports a failed delivery in
its result instead of raising, so a webhook that is down can never fail or hold up a
release. The payload is Slack's incoming-webhook JSON (`text` plus one attachment with
fields), which Mattermost, Rocket.Chat and most chat tools accept as well.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from temporalio import activity

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
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    @activity.defn(name="notify")
    async def notify(self, inp: NotifyInput) -> NotifyResult:
        if not inp.webhook_url.startswith(("http://", "https://")):
            return NotifyResult(False, error=f"webhook URL {inp.webhook_url!r} is not http(s)")
        return await asyncio.to_thread(self._post, inp)

    def _post(self, inp: NotifyInput) -> NotifyResult:
        body = json.dumps(payload(inp)).encode()
        request = urllib.request.Request(  # noqa: S310 (scheme checked above)
            inp.webhook_url,
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
