"""The layer-by-layer calibration engine every data-aware method shares.

1. Capture what decoder layer 0 receives for the calibration batches, and what every layer
   receives besides the hidden states (attention masks, rotary position embeddings, ... which
   can differ per layer, e.g. Gemma 3's sliding vs global layers). Done in one cheap forward
   pass with every decoder layer replaced by a recorder that passes hidden states through.
2. For each layer: hook its target linears to accumulate input statistics in fp32, run the
   layer on the batches (each statistics pass stops as soon as the last hooked linear has its
   input), let the method compress each linear, then re-run the (compressed)
   layer to produce the next layer's inputs, so errors of earlier layers are seen by later
   ones. With `true_sequential`, linears are handled in groups (q/k/v, o, gate/up, down) and the
   statistics of each group come from inputs that already went through the compressed
   earlier groups; a block whose inner linears are final (attention once q/k/v are, the MLP
   once gate/up are) is replayed as its output linear applied to that linear's cached input
   instead of being recomputed (block_replay.py).
Peak memory: one layer plus the calibration activations (the layer may be moved to a
different device than the rest of the model), plus up to `block_cache_bytes` per layer of
cached block inputs for true-sequential methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from unicomp.compress.base import Accumulator, LayerContext, Method, Progress
from unicomp.compress.block_replay import DEFAULT_BUDGET_BYTES, BlockReplay
from unicomp.errors import UnicompError
from unicomp.models.anatomy import anatomy_of


class _Recorder(torch.nn.Module):
    """Stands in for a decoder layer: remembers its inputs, returns hidden states unchanged."""

    def __init__(self, sink: list) -> None:
        super().__init__()
        self.sink = sink

    def forward(self, hidden_states, *args, **kwargs):
        if args:
            raise UnicompError("decoder layer called with positional arguments beyond hidden states",
                               "this transformers version is not supported by the sequential engine")
        kwargs = {k: v for k, v in kwargs.items() if k not in ("cache", "past_key_values", "past_key_value")}
        kwargs["use_cache"] = False
        self.sink.append((hidden_states, kwargs))
        return hidden_states


def batch_samples(samples: Sequence[Sequence[int]], batch_size: int) -> list[torch.Tensor]:
    """Equal-length samples batched together (no padding ever enters the statistics)."""
    by_len: dict[int, list[Sequence[int]]] = {}
    for s in samples:
        if len(s) == 0:
            continue
        by_len.setdefault(len(s), []).append(s)
    batches = []
    for length in sorted(by_len):
        group = by_len[length]
        for i in range(0, len(group), batch_size):
            batches.append(torch.tensor(group[i:i + batch_size], dtype=torch.long))
    if not batches:
        raise UnicompError("the calibration set is empty", "check the calibration source and n_samples")
    return batches


@torch.inference_mode()
def capture_layer_inputs(model: torch.nn.Module, batches: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[list[dict]]]:
    """(hidden states entering layer 0 per batch, per layer: the keyword arguments per batch)."""
    anatomy = anatomy_of(model)
    layers = model.get_submodule(anatomy.layers)
    originals = list(layers)
    sinks: list[list] = [[] for _ in originals]
    device = next(model.parameters()).device
    try:
        for i in range(len(layers)):
            layers[i] = _Recorder(sinks[i])
        decoder = model.get_decoder()
        for ids in batches:
            decoder(input_ids=ids.to(device), use_cache=False)
    finally:
        for i, layer in enumerate(originals):
            layers[i] = layer
    first = [h for h, _ in sinks[0]]
    kwargs = [[kw for _, kw in sink] for sink in sinks]
    return first, kwargs


def _move(obj: Any, device: torch.device) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, tuple):
        return tuple(_move(o, device) for o in obj)
    if isinstance(obj, list):
        return [_move(o, device) for o in obj]
    if isinstance(obj, dict):
        return {k: _move(v, device) for k, v in obj.items()}
    return obj


class _StatisticsDone(Exception):
    """Raised once every hooked linear has seen its input: the rest of the layer is not needed."""


def _accumulate_into(acc: Accumulator, device: torch.device, name: str, pending: set[str], hooked: set[str]):
    """Forward pre-hook feeding a linear's inputs to `acc`, always outside autocast: statistics
    (X^T X above all) must be computed in fp32 even when the passes run in bf16.

    When the last hooked linear of the pass has its input, the pass stops (`_StatisticsDone`):
    a statistics pass never needs the layer's output, so the work after the last hooked linear
    (for true-sequential q/k/v: the whole layer after the input norm) is skipped."""

    def hook(module, inputs) -> None:
        x = inputs[0]
        with torch.autocast(device_type=device.type, enabled=False):
            acc.add(x.reshape(-1, x.shape[-1]))
        pending.discard(name)
        if not pending:
            pending.update(hooked)  # ready for the next batch
            raise _StatisticsDone

    return hook


def _sharing(anatomy, name: str) -> tuple[str, ...]:
    """The other linears that read the same input as `name`."""
    for group in anatomy.shared_inputs:
        if name in group:
            return tuple(n for n in group if n != name)
    return ()


def _layer_out(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


@torch.inference_mode()
def run_sequential(
    model: torch.nn.Module,
    samples: Sequence[Sequence[int]],
    method: Method,
    *,
    batch_size: int = 8,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    compute_dtype: torch.dtype | None = None,
    block_cache_bytes: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Compress every target linear of every decoder layer in place; per-linear method stats.

    `compute_dtype` (e.g. bfloat16) runs the calibration forward passes under autocast: matmuls
    in that dtype, statistics still accumulated in fp32, weights updated in fp32. On CPUs with
    bf16 units this is several times faster; None keeps the reference fp32 passes.
    `block_cache_bytes`: memory per layer that true-sequential passes may spend on caching
    finished blocks' inputs (see block_replay; None: DEFAULT_BUDGET_BYTES, 0: never).
    """
    anatomy = anatomy_of(model)
    layers = model.get_submodule(anatomy.layers)
    model_device = next(model.parameters()).device
    work_device = torch.device(device) if device is not None else model_device
    batches = batch_samples(samples, batch_size)
    hidden, layer_kwargs = capture_layer_inputs(model, batches)
    hidden = [h.to(work_device) for h in hidden]
    per_layer: dict[str, dict[str, Any]] = {}
    groups = anatomy.linear_groups if method.true_sequential else (anatomy.linears,)
    def autocast():
        return torch.autocast(device_type=work_device.type, dtype=compute_dtype or torch.float32,
                              enabled=compute_dtype is not None)

    budget = DEFAULT_BUDGET_BYTES if block_cache_bytes is None else block_cache_bytes
    replay_blocks = anatomy.blocks if method.true_sequential and method.group_edits_stay_in_group else ()

    for index, layer in enumerate(layers):
        if work_device != model_device:
            layer.to(work_device)
        kwargs = [_move(kw, work_device) for kw in layer_kwargs[index]]
        replay = BlockReplay(layer, replay_blocks, anatomy.linears)
        cache_dtype = compute_dtype or hidden[0].dtype
        if BlockReplay.bytes_needed(replay.blocks, layer, hidden, cache_dtype) > budget:
            replay = BlockReplay(layer, (), anatomy.linears)
        done: set[str] = set()
        for group in groups:
            linears = {name: layer.get_submodule(name) for name in group}
            stats: dict[str, Accumulator] = {}
            hooked: dict[str, Accumulator] = {}
            for name, linear in linears.items():
                shared = next((stats[o] for o in _sharing(anatomy, name) if o in stats), None)
                if shared is not None and method.stats_from_inputs_only:
                    stats[name] = shared  # same input tensor: accumulate once
                    continue
                acc = method.accumulator(name, linear)
                if acc is not None:
                    stats[name] = hooked[name] = acc
            pending = set(hooked)
            handles, captured = replay.capture_hooks(replay.capturable(group, done) if hooked else ())
            handles += [linears[name].register_forward_pre_hook(_accumulate_into(acc, work_device, name, pending, set(hooked)))
                        for name, acc in hooked.items()]
            try:
                if hooked:
                    with autocast(), replay.replaying():
                        for batch, (h, kw) in enumerate(zip(hidden, kwargs)):
                            replay.batch = batch
                            try:
                                layer(h, **kw)
                            except _StatisticsDone:
                                pass
                            if pending != set(hooked):
                                raise UnicompError(f"{anatomy.layers}.{index}: linears {sorted(pending)} never ran",
                                                   "the anatomy lists linears this layer does not call")
            finally:
                for handle in handles:
                    handle.remove()
            replay.keep(captured, len(hidden))
            del captured  # kept (or dropped) by replay; nothing else may hold the last layer's inputs
            prefix = f"{anatomy.layers}.{index}"
            ctx = LayerContext(layer=layer, index=index, prefix=prefix, anatomy=anatomy, hidden=hidden, kwargs=kwargs,
                               autocast=autocast)
            for name, result in method.compress_group(ctx, linears, stats).items():
                per_layer[f"{prefix}.{name}"] = result
            done.update(group)
        if index + 1 < len(layers) or method.compresses_lm_head:  # else the outputs feed nothing we compress
            outputs = []
            with autocast(), replay.replaying():
                for batch, (h, kw) in enumerate(zip(hidden, kwargs)):
                    replay.batch = batch
                    outputs.append(_layer_out(layer(h, **kw)))
            hidden = outputs
        del replay
        if work_device != model_device:
            layer.to(model_device)
        if progress is not None:
            progress("layers", index + 1, len(layers))
    if method.compresses_lm_head:
        per_layer[anatomy.lm_head] = _compress_lm_head(model, anatomy, method, hidden, work_device, autocast)
    return per_layer


def untie_lm_head(model: torch.nn.Module, anatomy) -> torch.nn.Linear:
    """The output head as its own matrix: compressing a head tied to the input embeddings would
    silently compress the embeddings too."""
    head = model.get_submodule(anatomy.lm_head)
    embed = model.get_submodule(anatomy.embed_tokens)
    if head.weight is embed.weight or head.weight.data_ptr() == embed.weight.data_ptr():
        head.weight = torch.nn.Parameter(head.weight.detach().clone(), requires_grad=False)
        model.config.tie_word_embeddings = False
        text_config = getattr(model.config, "text_config", None)
        if text_config is not None and hasattr(text_config, "tie_word_embeddings"):
            text_config.tie_word_embeddings = False
    return head


def _compress_lm_head(model, anatomy, method: Method, hidden: list[torch.Tensor], device: torch.device, autocast):
    """Statistics of the head's inputs (the final norm of the last layer's outputs), then compress it."""
    head = untie_lm_head(model, anatomy)
    norm = model.get_submodule(anatomy.final_norm)
    model_device = head.weight.device
    head.to(device), norm.to(device)
    acc = method.accumulator("lm_head", head)
    if acc is not None:
        with autocast():
            for h in hidden:
                x = norm(h)
                with torch.autocast(device_type=device.type, enabled=False):
                    acc.add(x.reshape(-1, x.shape[-1]).float())
    with torch.inference_mode(False), torch.no_grad():
        result = method.compress_linear("lm_head", head, acc)
    head.to(model_device), norm.to(model_device)
    return result
