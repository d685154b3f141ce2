"""Run a plan's units as Ray tasks, in dependency order, across a cluster (`executor: ray`).

The driver (this process) binds each unit's inputs from finished dependencies, skips stored
units, submits the rest with resource requests (a GPU for units on CUDA, a CPU otherwise) and
commits each result to the store as it arrives: only the driver writes the store, so its
guarantees hold unchanged. Units are independent of where they run: a worker loads the models it
needs and writes checkpoints through outputs.py (staged, then renamed), so a worker killed
mid-unit leaves nothing half-written and Ray runs the unit again (`max_retries`).
Checkpoints go to output_dir, which must be a folder every worker sees (a shared filesystem) on a
multi-machine cluster.
"""

from __future__ import annotations

import socket
from contextlib import nullcontext
from typing import Any

from unicomp.errors import UnicompError
from unicomp.runs.executor import finish, reuse
from unicomp.runs.plan import Plan
from unicomp.runs.store import Store
from unicomp.runs.units import UnitContext

RETRIES = 3  # a unit whose worker dies is run again, up to this many times


def _ray():
    try:
        import ray
    except ImportError:
        raise UnicompError("executor 'ray' needs the Ray package, which is not installed",
                           "pip install -e '.[ray]' (or pip install 'ray>=2.9'), or use executor: local") from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not after Ray's minutes of retries, when nothing answers at `address`."""
    if address in ("auto", "local"):
        return
    hostport = address.removeprefix("ray://").rstrip("/")
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return
    except (OSError, ValueError) as exc:
        raise UnicompError(f"no Ray cluster answers at {address!r} ({exc})",
                           "start one with `ray start --head` and pass its address (host:6379 or ray://host:10001), "
                           "or leave the address unset for a local cluster") from None


def _run_unit(unit, dtype: str, device: str, data_dir: str | None):
    """In a worker: run one unit with models loaded there; returns (record, seconds)."""
    from unicomp.runs.models import ModelPool
    from unicomp.runs.units import UnitContext, timed

    ctx = UnitContext(ModelPool(dtype, device), lambda description, total: nullcontext(lambda n: None),
                      lambda s: None, data_dir)
    return timed(lambda: unit.run(ctx))


class RayExecutor:
    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None) -> None:
        self.ray = _ray()
        self.address = address
        if address:
            _check_reachable(address)
        if not self.ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            try:
                if address:
                    self.ray.init(address=address, **kwargs)
                else:
                    self.ray.init(num_cpus=num_cpus, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UnicompError(f"cannot connect to the Ray cluster at {address or 'a new local cluster'}: {exc}",
                                   "check `ray status` on the head node, or use executor: local") from None

    def execute(self, plan: Plan, ctx: UnitContext, *, store: Store | None, run_id: str | None,
                environment: dict[str, Any]) -> dict[str, Any]:
        ray = self.ray
        remote = ray.remote(max_retries=RETRIES)(_run_unit)
        pending, running, done = list(plan.units), {}, {}
        total, finished = len(plan.units), 0
        dtype, device = ctx.pool.dtype, ctx.pool.device
        while pending or running:
            for unit in [u for u in pending if all(n in done for n in u.needs)]:
                pending.remove(unit)
                if reuse(unit, plan, done, store, run_id):
                    finished += 1
                    ctx.status(f"[{finished}/{total}] {unit.name} (reused from the store)")
                    continue
                running[remote.options(**unit.estimate()).remote(unit, dtype, device, ctx.data_dir)] = unit
            if not running:
                continue
            ready, _ = ray.wait(list(running), num_returns=1)
            for ref in ready:
                unit = running.pop(ref)
                record, seconds = ray.get(ref)
                finish(unit, plan, done, store, run_id, record, environment, seconds)  # bound before submission
                finished += 1
                ctx.status(f"[{finished}/{total}] {unit.name} (on Ray)")
        return done
