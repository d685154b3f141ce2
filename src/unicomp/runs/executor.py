"""Run a plan: every unit in dependency order, stored units reused, each new one committed whole.

One executor under `unicomp eval`, `unicomp compress` and `unicomp run`. The local executor runs
units in this process, in plan order (the plan is topologically sorted, and its order keeps one
variant's models in memory at a time). `executor: ray` hands units to a Ray cluster instead
(runs/ray_executor.py); either way only this process writes the store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unicomp.runs.plan import Plan
from unicomp.runs.store import Store
from unicomp.runs.units import UnitContext, timed

Status = Callable[[str], None]


def reuse(unit, plan: Plan, done: dict[str, Any], store: Store | None, run_id: str | None) -> bool:
    """Bind the unit to its finished dependencies; if its key is stored (and still usable), link
    the stored unit to this run and take its record. Shared by every executor."""
    unit.bind(done)
    key = unit.key()
    stored = store.find_unit(key) if store is not None and key is not None else None
    if stored is None or not unit.reusable(stored):
        unit.prepare(store)  # e.g. a judge reads the stored generations it judges, before it runs anywhere
        return False
    store.link_unit(run_id, key)
    done[unit.name] = unit.from_stored(stored)
    plan.keys[unit.name] = key
    return True


def finish(unit, plan: Plan, done: dict[str, Any], store: Store | None, run_id: str | None, record: Any,
           environment: dict[str, Any], seconds: float) -> None:
    """Commit a unit that ran (one transaction) and hand its record to its dependents."""
    key = unit.key()  # a compress unit for `unicomp compress` has a key but no store
    if store is not None and key is not None:
        unit.commit(store, run_id, key, record, environment, seconds)
    done[unit.name] = record
    plan.keys[unit.name] = key


class LocalExecutor:
    name = "local"

    def execute(self, plan: Plan, ctx: UnitContext, *, store: Store | None, run_id: str | None,
                environment: dict[str, Any]) -> dict[str, Any]:
        """unit name -> record; `plan.keys` gets every unit's key."""
        done: dict[str, Any] = {}
        total = len(plan.units)
        for index, unit in enumerate(plan.units, start=1):
            if reuse(unit, plan, done, store, run_id):
                ctx.status(f"[{index}/{total}] {unit.name} (reused from the store)")
                continue
            record, seconds = timed(lambda: unit.run(ctx))
            finish(unit, plan, done, store, run_id, record, environment, seconds)
            ctx.status(f"[{index}/{total}] {unit.name}")
        return done
