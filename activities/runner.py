"""Run one outside tool as a subprocess, the way every activity here does.

- argv lists only: nothing ever goes through a shell;
- the process gets its own process group, killed whole on timeout or cancellation;
- stdout and stderr go to a log file (one per release and step) and the last lines
  come back in the result and in the activity's heartbeat details, all of it redacted
  first (`activities.redact`: secret-shaped strings and registered secret values), since
  the tail ends up in error messages and heartbeats, i.e. in workflow history;
- inside an activity, a heartbeat is sent every `heartbeat_every` seconds so Temporal
  notices a dead worker and delivers cancellation.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio import activity

from activities.redact import LineRedactor, redact

TAIL_LINES = 40
# Longest output line read (asyncio's default is 64 KiB): `terraform show -json` of a
# plan prints one JSON line of several MB once a provider's resources are in it.
LINE_LIMIT = 64 * 1024 * 1024


def heartbeat(details: str) -> None:
    """Heartbeat `details` when called inside an activity (helpers also run outside one,
    in tests and the CLI): what a long wait is waiting for, for the UI and `status`."""
    if activity.in_activity():
        activity.heartbeat(details)


@dataclass
class RunResult:
    argv: list[str]
    returncode: int
    tail: list[str]
    log_path: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail_text(self, lines: int = 15) -> str:
        return "\n".join(self.tail[-lines:])


class CommandTimeout(Exception):
    """The command ran past its timeout and was killed."""

    def __init__(self, argv: Sequence[str], timeout: float, tail: list[str]) -> None:
        super().__init__(
            f"{argv[0]} did not finish within {timeout:g}s and was killed; last output:\n"
            + "\n".join(tail[-10:])
        )
        self.tail = tail


async def run(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 600.0,  # noqa: ASYNC109 (on expiry the process group must be killed)
    heartbeat_every: float = 5.0,
    stdin_data: bytes | None = None,
) -> RunResult:
    """Run argv to completion; return its exit code and output tail (never raises on rc!=0)."""
    if isinstance(argv, str) or not argv:
        raise TypeError("argv must be a non-empty list of strings, never a shell string")
    argv = [str(a) for a in argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    full_env = dict(os.environ if env is None else env)
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd) if cwd else None,
        env=full_env,
        stdin=asyncio.subprocess.PIPE if stdin_data is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # own process group, so a kill takes its children too
        limit=LINE_LIMIT,
    )
    in_activity = activity.in_activity()

    async def pump() -> None:
        assert proc.stdout is not None
        redactor = LineRedactor()
        with log_path.open("ab") as log:
            log.write(("$ " + redact(" ".join(argv)) + "\n").encode())
            async for raw in proc.stdout:
                # surrogateescape: bytes that are not UTF-8 reach the log unchanged
                line = redactor.line(raw.decode(errors="surrogateescape"))
                log.write(line.encode(errors="surrogateescape"))
                log.flush()
                tail.append(
                    line.encode(errors="surrogateescape").decode(errors="replace").rstrip("\n")
                )

    async def beat() -> None:
        while True:
            await asyncio.sleep(heartbeat_every)
            activity.heartbeat({"command": argv[0], "tail": list(tail)[-5:]})

    if stdin_data is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin_data)
        await proc.stdin.drain()
        proc.stdin.close()
    pump_task = asyncio.create_task(pump())
    beat_task = asyncio.create_task(beat()) if in_activity else None
    try:
        await asyncio.wait_for(asyncio.shield(pump_task), timeout=timeout)
        returncode = await proc.wait()
    except TimeoutError:
        await _kill_group(proc)
        raise CommandTimeout(argv, timeout, list(tail)) from None
    except BaseException:
        # cancellation (activity cancelled, worker shutting down) or anything else
        await _kill_group(proc)
        raise
    finally:
        if beat_task:
            beat_task.cancel()
        if not pump_task.done():
            pump_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump_task
    return RunResult(argv=argv, returncode=returncode, tail=list(tail), log_path=str(log_path))


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, then SIGKILL what is left after a short grace."""
    if proc.returncode is not None:
        return
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout=grace)
            return
        except TimeoutError:
            continue
