"""Activity options the workflows derive: a Kubernetes rollout gets the time it may take."""

from __future__ import annotations

from datetime import timedelta

from workflows import activity_options as opts


def test_a_kubernetes_rollout_outlasts_its_readiness_deadline() -> None:
    local = opts.for_rollout(opts.DEPLOY, None)
    assert local is opts.DEPLOY
    # 15 minutes to be ready; a promotion waits twice, plus helm's own time
    slow = opts.for_rollout(opts.DEPLOY, 15 * 60)
    assert slow.start_to_close == timedelta(minutes=35)
    assert (slow.heartbeat, slow.retry, slow.cancellation) == (
        opts.DEPLOY.heartbeat,
        opts.DEPLOY.retry,
        opts.DEPLOY.cancellation,
    )
    # never shorter than the local target's own
    assert opts.for_rollout(opts.RESTORE, 30).start_to_close == opts.RESTORE.start_to_close
