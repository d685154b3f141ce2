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


class LocalExecutor:
    name = "local"

    def execute(self, plan: Plan, ctx: UnitContext, *, store: Store | None, run_id: str | None,
                environment: dict[str, Any]) -> dict[str, Any]:
        """unit name -> record; `plan.keys` gets every unit's key."""
        done: dict[str, Any] = {}
        total = len(plan.units)
        for index, unit in enumerate(plan.units, start=1):
            unit.bind(done)
            key = unit.key()
            stored = store.find_unit(key) if store is not None and key is not None else None
            if stored is not None and unit.reusable(stored):
                store.link_unit(run_id, key)
                done[unit.name] = unit.from_stored(stored)
                plan.keys[unit.name] = key
                ctx.status(f"[{index}/{total}] {unit.name} (reused from the store)")
                continue
            record, seconds = timed(lambda: unit.run(ctx))
            key = unit.key()  # known now for every kind (a compress unit for `unicomp compress` has none)
            if store is not None and key is not None:
                unit.commit(store, run_id, key, record, environment, seconds)
            done[unit.name] = record
            plan.keys[unit.name] = key
            ctx.status(f"[{index}/{total}] {unit.name}")
        return done
