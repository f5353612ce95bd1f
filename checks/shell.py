"""Run a shell command under supervision: streamed output, a deadline, the whole group killed.

`migrate deploy --command` runs the application's own deploy (``bunx prisma migrate
deploy``) this way, and the poller's probes can run a post-deploy command the same way:
the command runs through the shell in its own process group, each output line is
handed over as it comes (passwords scrubbed), and after the timeout the whole group is
terminated, so a hung `npx` child cannot outlive Driftwatch.

    run_command(command, timeout, env=None, on_line=None) -> CommandResult
"""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Mapping

from .db import scrub
from .errors import UsageError

__all__ = ["CommandResult", "run_command"]




@dataclass(frozen=True)
class CommandResult:
    exit_code: int  # negative: killed by that signal (e.g. -15 after a timeout)
    output_tail: tuple[str, ...]  # the last lines (stdout and stderr merged), passwords scrubbed
    timed_out: bool
    seconds: float


def run_command(
    command: str,
    timeout: float,
    env: Mapping[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
    *,
    tail_lines: int = 40,
    kill_grace: float = 5.0,
    cwd: str | os.PathLike[str] | None = None,
) -> CommandResult:
    """Run `command` through the shell in its own process group, streaming its output.

    Each output line (stdout and stderr merged, decoded as UTF-8, any password from a URL
    in `env` scrubbed) goes to `on_line` as it comes. After `timeout` seconds the whole
    process group gets SIGTERM, then SIGKILL after `kill_grace` seconds. stdin is closed,
    so a command that prompts fails instead of hanging. `cwd`: where it runs (the
    application's folder, for a command such as `npx prisma migrate deploy`).
    """
    import queue

    if not command or not command.strip():
        raise UsageError("the command is empty")
    if not (timeout > 0):
        raise UsageError(f"the timeout must be a positive number of seconds, not {timeout!r}")
    environ = dict(os.environ)
    environ.update(env or {})
    secrets = [v for v in (env or {}).values() if "://" in v]

    def clean(line: str) -> str:
        for secret in secrets:
            line = scrub(line, secret)
        return scrub(line)

    started = time.monotonic()
    try:
        proc = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=environ, start_new_session=True, cwd=cwd)
    except OSError as exc:
        where = f" in {cwd}" if cwd is not None and exc.filename is not None else ""
        raise UsageError(f"cannot run the command{where}: {exc.strerror or exc}") from None
    lines: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        try:
            for raw in iter(proc.stdout.readline, b""):
                lines.put(raw)
        except (OSError, ValueError):  # the pipe was closed under us after the command ended
            pass
        lines.put(None)

    reader = threading.Thread(target=pump, name="driftwatch-command-output", daemon=True)
    reader.start()
    tail: deque[str] = deque(maxlen=tail_lines)

    def emit(raw: bytes) -> None:
        line = clean(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        tail.append(line)
        if on_line is not None:
            on_line(line)

    deadline = started + timeout
    timed_out = False
    exited_at: float | None = None
    while True:
        now = time.monotonic()
        if now >= deadline:
            timed_out = proc.poll() is None
            break
        if exited_at is None and proc.poll() is not None:
            exited_at = now
        if exited_at is not None and now - exited_at > 2.0:
            break  # the shell is gone; a background child still holds the pipe: stop reading
        try:
            raw = lines.get(timeout=min(0.2, deadline - now))
        except queue.Empty:
            continue
        if raw is None:
            break
        emit(raw)
    if timed_out:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=kill_grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
    try:
        code = proc.wait(timeout=kill_grace + 5)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        code = proc.wait()
    # whatever is still queued (the last lines before exit)
    while True:
        try:
            raw = lines.get_nowait()
        except queue.Empty:
            break
        if raw is None:
            break
        emit(raw)
    if proc.stdout is not None and not reader.is_alive():
        proc.stdout.close()
    return CommandResult(code, tuple(tail), timed_out, time.monotonic() - started)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the shell's pid
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM a child started with `start_new_session`, and whatever it started (its group);
    SIGKILL after `grace` seconds. A process already gone is fine."""
    if proc.poll() is not None:
        return
    _signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(proc, signal.SIGKILL)
        proc.wait(timeout=grace)
