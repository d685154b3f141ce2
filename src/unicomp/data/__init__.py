"""Benchmark rows from whichever source this machine can reach, with a record of which one.

Users run unicomp on laptops with the Hugging Face hub, on clusters with a local mirror and on
CI machines that reach only PyPI; the same task must see the same rows everywhere, and every
result must say where its data came from. `load_rows` is the single entry point.
"""

from unicomp.data.resolver import (
    DEFAULT_SOURCE_ORDER,
    ResolvedDataset,
    load_rows,
    source_order,
)

__all__ = ["DEFAULT_SOURCE_ORDER", "ResolvedDataset", "load_rows", "source_order"]
