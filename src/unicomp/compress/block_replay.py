"""Skip recomputing finished blocks in true-sequential passes, from their output linear's cached input.

True-sequential compression (GPTQ) runs each decoder layer once per linear group (q/k/v, o,
gate/up, down) plus once to produce the next layer's inputs, and every pass recomputes the layer
from its start. But once q/k/v are final, attention's output is o_proj(input of o_proj) for every
later pass, and that input is exactly what the o_proj statistics pass sees; likewise the MLP's
output is down_proj(input of down_proj) once gate/up are final. Caching those inputs while their
pass runs lets the later passes replace the whole block by one matmul: for SmolLM2 the forward
work of compressing a layer drops by about 40%, with bit-identical results (the replayed block
computes the same ops on the same tensors).

This is only valid when compressing a group changes nothing but that group's linears (GPTQ,
RTN, pruning; not AWQ or SmoothQuant, which fold scales into earlier modules), which the method
declares with `Method.group_edits_stay_in_group`, and it costs memory: one cached activation per
calibration token per block, so the engine skips it for a layer whose caches would exceed a
budget (`run_sequential(block_cache_bytes=...)`, also `compress_model(block_cache_bytes=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from unicomp.errors import UnicompError

# Default memory a layer's cached block inputs may take (SmolLM2-135M, 128 x 512 tokens: 0.55 GB).
DEFAULT_BUDGET_BYTES = 4 << 30


class BlockReplay:
    """Per-layer cache of block-output-linear inputs, and the context that replays them.

    The engine sets `batch` before running the layer on calibration batch `batch`, so a replayed
    block returns output_linear(cached input of that batch), whatever stopped earlier passes.
    """

    def __init__(self, layer: torch.nn.Module, blocks: Sequence[Any], linears: Sequence[str]) -> None:
        self.layer = layer
        # only blocks whose output linear is a linear the engine compresses in this layer
        self.blocks = [b for b in blocks if b.output_linear in linears]
        self.linears = tuple(linears)
        self.cached: dict[str, list[torch.Tensor]] = {}
        self.batch = 0

    def capturable(self, group: Sequence[str], done: set[str]) -> list[Any]:
        """Blocks whose output linear is in `group` while every other linear of the block is final."""
        ready = []
        for block in self.blocks:
            if block.module in self.cached or block.output_linear not in group:
                continue
            others = [n for n in self.linears if n.startswith(block.module + ".") and n != block.output_linear]
            if all(n in done for n in others):
                ready.append(block)
        return ready

    def capture_hooks(self, blocks: Sequence[Any]) -> tuple[list[Any], dict[str, list[torch.Tensor]]]:
        """Forward pre-hooks storing each block's output-linear input per batch (register them before
        the statistics hooks, which may end the pass)."""
        store: dict[str, list[torch.Tensor]] = {b.module: [] for b in blocks}
        handles = []
        for block in blocks:
            sink = store[block.module]

            def hook(module, inputs, _sink=sink) -> None:
                _sink.append(inputs[0])

            handles.append(self.layer.get_submodule(block.output_linear).register_forward_pre_hook(hook))
        return handles, store

    def keep(self, store: dict[str, list[torch.Tensor]], batches: int) -> None:
        """Adopt captures that saw every batch exactly once (anything else is dropped, not trusted)."""
        for module, inputs in store.items():
            if len(inputs) == batches:
                self.cached[module] = inputs

    @contextmanager
    def replaying(self) -> Iterator[None]:
        """Within the context, every cached block computes output_linear(cached input of `batch`)."""
        patched: list[tuple[torch.nn.Module, Any]] = []
        try:
            for block in self.blocks:
                if block.module in self.cached:
                    module = self.layer.get_submodule(block.module)
                    # an instance-level forward (e.g. an offloading wrapper) is put back afterwards
                    patched.append((module, module.__dict__.get("forward")))
                    module.forward = self._replay(block, self.cached[block.module])
            yield
        finally:
            for module, previous in patched:
                if previous is None:
                    del module.forward  # back to the class's forward
                else:
                    module.forward = previous

    def _replay(self, block: Any, inputs: list[torch.Tensor]) -> Callable[..., Any]:
        linear = self.layer.get_submodule(block.output_linear)

        def forward(*args: Any, **kwargs: Any) -> Any:
            x = inputs[self.batch]
            incoming = args[0] if args else kwargs.get("hidden_states")
            if incoming is not None and incoming.shape[:-1] != x.shape[:-1]:
                raise UnicompError(f"replayed block {block.module} got batch of shape {tuple(incoming.shape)} "
                                   f"but its cached input has {tuple(x.shape)}",
                                   "this is a bug in the sequential engine; pass block_cache_bytes=0 to compress_model to bypass it")
            out = linear(x)
            return (out, None) if block.returns_tuple else out

        return forward

    @staticmethod
    def bytes_needed(blocks: Sequence[Any], layer: torch.nn.Module, hidden: Sequence[torch.Tensor],
                     dtype: torch.dtype) -> int:
        tokens = sum(h.shape[:-1].numel() for h in hidden)
        size = torch.empty((), dtype=dtype).element_size()
        return sum(tokens * layer.get_submodule(b.output_linear).in_features * size for b in blocks)
