"""Which process owns a temporary folder or a running run, and whether that process is gone.

A SIGKILL leaves no chance to clean up, so whatever a process writes temporarily carries an
owner token, and a later process (or `unicomp gc`) removes what a dead owner left. The token
is `pid.start.host`: the start time tells a live process from a new one that reused the pid,
the host hash keeps one machine from judging another's processes on a shared filesystem.
"""

from __future__ import annotations

import hashlib
import os
import socket
from functools import lru_cache


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    return fields[19] if len(fields) > 19 else None  # field 22 of stat; 20th after the name


@lru_cache(maxsize=1)
def _host() -> str:
    """This machine and PID namespace: containers sharing a hostname do not share pids."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{socket.gethostname()}|{namespace}".encode()).hexdigest()[:8]


def token() -> str:
    """This process's owner token (no dots inside its parts, so it can sit in file names)."""
    pid = os.getpid()
    return f"{pid}.{_start_time(pid) or 0}.{_host()}"


def is_dead(owner: str | None) -> bool:
    """True only when we know the owner is gone: same host and no such process (or a new one
    with that pid). Unknown owners count as alive: never delete what might still be in use."""
    if not owner:
        return False
    parts = owner.split(".")
    if len(parts) != 3 or parts[2] != _host():
        return False
    try:
        pid = int(parts[0])
    except ValueError:
        return False
    if pid == os.getpid():
        return parts[1] != str(_start_time(pid) or 0)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True  # no such process
    except OSError:
        return False  # it exists (we may not signal it): alive
    started = _start_time(pid)  # None where /proc hides other users' processes: assume alive
    return started is not None and parts[1] != "0" and started != parts[1]  # a new process reusing the pid
