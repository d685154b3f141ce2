"""Named points where a real signal can be delivered to the running process, for fault tests.

`UNICOMP_FAILPOINT=NAME:SIGNAL[:N]` makes the process send itself SIGNAL (SIGINT, SIGTERM,
SIGKILL) the N-th time (default 1st) it reaches the point NAME. The fault suite uses it to kill
`unicomp compress` and `unicomp run` at exact places (inside a save, between the two renames
of a replacement, inside a store transaction) instead of guessing with timers. With
`UNICOMP_FAILPOINT_ONCE=FILE` the signal fires only in the first process to get there (it creates
FILE): a unit retried in a new process (a Ray worker) then runs through. Unset, a point costs one
dictionary lookup. The points:

  compress.layer     after each decoder layer is compressed
  save.staged        a checkpoint is fully written in its hidden temporary folder, not yet moved
  save.swap          the old folder is moved aside, the new one not yet moved in
  evaluate.scored    a task's items are scored, the unit not yet stored
  store.commit       inside the transaction that stores a unit, before it commits
  distance.window    after each window of a distance-to-base unit
  distill.step       after each optimizer step of a distillation (and its checkpoint, when one is due)
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV = "UNICOMP_FAILPOINT"
_reached: Counter[str] = Counter()


def failpoint(name: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    parts = spec.split(":")
    if parts[0] != name:
        return
    _reached[name] += 1
    nth = int(parts[2]) if len(parts) > 2 else 1
    if _reached[name] != nth:
        return
    once = os.environ.get(ENV + "_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another process already took the signal
    os.kill(os.getpid(), getattr(signal, parts[1] if len(parts) > 1 else "SIGKILL"))
