"""Decoding with continuous batching: the `generate_until` request type, fast on a CPU.

`transformers.generate` (and lm-eval's HFLM on top of it) decodes a fixed batch until its
longest answer ends: a batch of short answers waits for one long one, and finished rows keep
being computed. Here a batch is a set of *slots*: a row that stops (end-of-sequence, a stop
string, or its token budget) leaves at once and the next prompt (longest first) is prefilled
alone and takes its slot. The cache is preallocated per slot (each row's tokens from column 0,
right-padded): a step writes one column per row, and a row joining or leaving copies nothing
else, where `DynamicCache` copies the whole cache every step.

What is computed equals greedy `generate`: each row sees only its own tokens (padding is
masked, positions are the row's own), stop strings are checked on the raw decoded tail (as
lm-eval's stopping criteria do), the answer is decoded without special tokens and cut before
the first stop string (lm-eval's rule). Prompts longer than the context lose their oldest
tokens (lm-eval's left truncation); the count is returned per request.

Models whose cache is not plain full attention (sliding-window or hybrid layers) fall back to
`generate` on static batches of prompts sorted by length.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

ProgressHook = Callable[[int], None]


@dataclass
class Generation:
    text: str
    finish_reason: str  # "stop" (end of sequence or a stop string) | "length" (token budget)
    prompt_tokens: int
    completion_tokens: int
    truncated_tokens: int = 0  # prompt tokens dropped from the left to fit the context


@dataclass
class GenerationRequest:
    """One prompt, already tokenized and truncated, and how to decode it."""

    index: int
    ids: list[int]
    until: list[str]
    max_new: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    truncated: int = 0


@dataclass
class _Row:
    req: GenerationRequest
    tokens: list[int] = field(default_factory=list)
    pending: int | None = None
    position: int = 0  # position id of the next token fed
    generator: torch.Generator | None = None
    finish: str | None = None
    slot: int = -1  # the row's place in the slot cache


class _StepColumns:
    """Where this step writes: one column per slot (the row's position), and the width read."""

    def __init__(self, slots: int, device: torch.device) -> None:
        self.slots = torch.arange(slots, device=device)
        self.columns = torch.zeros(slots, dtype=torch.long, device=device)
        self.width = 1


@functools.cache
def _slot_layer_class():
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        """Keys and values of one layer for every slot, preallocated: row `s` holds its own tokens
        in columns 0..position (right padding), so a step writes one column per row and a
        finished row's slot is refilled in place, with no copy of the others."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor, step: _StepColumns) -> None:
            super().__init__()
            self._k, self._v, self.step = keys, values, step
            self.device = keys.device
            self.is_initialized = True
            self.keys, self.values = keys[:, :, :0], values[:, :, :0]

        def update(self, key_states, value_states, *args, **kwargs):
            self._k[self.step.slots, :, self.step.columns] = key_states[:, :, 0]
            self._v[self.step.slots, :, self.step.columns] = value_states[:, :, 0]
            width = self.step.width
            self.keys, self.values = self._k[:, :, :width], self._v[:, :, :width]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.step.width - 1  # the mask spans `width` columns: the past plus this step's

    return SlotLayer


class _SlotCache:
    """The per-layer slot buffers. Unused columns hold zeros or an earlier row's values: finite,
    and masked (a masked position's value is multiplied by exactly 0)."""

    def __init__(self, slots: int, kv: list[tuple[torch.Tensor, torch.Tensor]], capacity: int) -> None:
        self.step = _StepColumns(slots, kv[0][0].device)
        self.layers = [self._layer(slots, k, v, capacity) for k, v in kv]

    def _layer(self, slots: int, k: torch.Tensor, v: torch.Tensor, capacity: int):
        shape = (slots, k.shape[1], capacity, k.shape[3])
        return _slot_layer_class()(k.new_zeros(shape), v.new_zeros(shape), self.step)

    @property
    def slots(self) -> int:
        return self.layers[0]._k.shape[0]

    @property
    def capacity(self) -> int:
        return self.layers[0]._k.shape[2]

    def put(self, slot: int, kv: list[tuple[torch.Tensor, torch.Tensor]], need: int) -> None:
        """A prefilled row's keys and values into `slot`, columns 0..prompt length."""
        self.grow(need)
        n = kv[0][0].shape[2]
        for layer, (k, v) in zip(self.layers, kv):
            layer._k[slot, :, :n] = k[0]
            layer._v[slot, :, :n] = v[0]

    def grow(self, need: int) -> None:
        if need > self.capacity:
            self._resize(list(range(self.slots)), max(need, self.capacity + self.capacity // 2))

    def keep(self, slots: list[int], capacity: int) -> None:
        """Only these slots, renumbered 0..len-1 (when the queue is empty and most slots are idle)."""
        self._resize(slots, capacity)

    def _resize(self, slots: list[int], capacity: int) -> None:
        cols = min(capacity, self.capacity)
        idx = torch.tensor(slots, device=self.step.slots.device)
        layers = []
        for layer in self.layers:
            new = self._layer(len(slots), layer._k, layer._v, capacity)
            new._k[:, :, :cols] = layer._k[idx, :, :cols]
            new._v[:, :, :cols] = layer._v[idx, :, :cols]
            layers.append(new)
        old = self.step
        self.step = _StepColumns(len(slots), old.slots.device)
        for layer in layers:
            layer.step = self.step
        self.layers = layers


def _layers_are_plain(model) -> bool:
    """True when every cache layer of this model is a plain full-attention DynamicLayer."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # noqa: BLE001 - an unusual config: use the safe path
        return False
    return bool(cache.layers) and all(type(layer) is DynamicLayer for layer in cache.layers)


class Decoder:
    """Continuous-batching decoder over a transformers causal LM.

    Args:
        model, tokenizer: the model (eval mode) and its tokenizer.
        batch_size: live rows per decoding step.
        eos_ids: token ids that end a row (the model's generation config's, as `generate` uses).
    """

    def __init__(self, model, tokenizer, batch_size: int, eos_ids: Sequence[int]) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eos_ids = set(int(i) for i in eos_ids)
        self.continuous = _layers_are_plain(model)
        # transformers 5.x renamed `past_key_values` to `cache` in forward; use whichever this one takes
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ public
    @torch.inference_mode()
    def run(self, requests: Sequence[GenerationRequest], progress: ProgressHook | None = None) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        # longest first: the widest prompts set the cache width early, later ones pad less
        queue = sorted(requests, key=lambda r: -len(r.ids))
        if self.continuous:
            self._continuous(queue, results, progress)
        else:
            self._static(queue, results, progress)
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ continuous batching
    def _continuous(self, queue: list[GenerationRequest], results: list, progress) -> None:
        rows: list[_Row] = []
        cache: _SlotCache | None = None
        queue = list(queue)
        while queue or rows:
            while queue and (cache is None or len(rows) < cache.slots):
                row, kv = self._prefill(queue.pop(0))
                need = len(row.req.ids) + row.req.max_new + 1
                if cache is None:
                    # the queue is longest first: the first rows set a capacity later rows rarely exceed
                    slots = min(self.batch_size, len(queue) + 1)
                    capacity = max([need] + [len(r.ids) + r.max_new + 1 for r in queue[:slots - 1]])
                    cache = _SlotCache(slots, kv, capacity)
                used = {r.slot for r in rows}
                row.slot = next(s for s in range(cache.slots) if s not in used)
                cache.put(row.slot, kv, need)
                rows.append(row)
            finished = [row for row in rows if self._consume(row)]
            if finished:
                for row in finished:
                    results[row.req.index] = self._result(row)
                rows = [row for row in rows if row.finish is None]
                if progress is not None:
                    progress(len(finished))
                if queue:
                    continue  # refill the freed slots before the next step
                if rows and len(rows) <= cache.slots // 2:
                    # the tail: stop computing idle slots (at most log2(batch) copies of a shrinking cache)
                    capacity = max(r.position + r.req.max_new - len(r.tokens) + 1 for r in rows)
                    cache.keep([r.slot for r in rows], capacity)
                    for i, row in enumerate(rows):
                        row.slot = i
            if rows:
                self._step(rows, cache)

    def _prefill(self, req: GenerationRequest) -> tuple[_Row, list[tuple[torch.Tensor, torch.Tensor]]]:
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        ids = torch.tensor([req.ids], device=self.device)
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1, **{self._cache_kw: cache})
        row = _Row(req, position=len(req.ids))
        if req.temperature > 0:
            # the request's own seed: a sample never depends on what else shares the batch
            row.generator = torch.Generator(device="cpu").manual_seed(int(req.seed or 0))
        row.pending = self._pick(out.logits[:, -1], [row])[0]
        kv = [(layer.keys, layer.values) for layer in cache.layers]
        return row, kv

    def _step(self, rows: list[_Row], cache: _SlotCache) -> None:
        """One token for every live row; an idle slot attends to its column 0 and is ignored."""
        from transformers import DynamicCache

        slots = cache.slots
        ids = [0] * slots
        pos = [0] * slots
        for r in rows:
            ids[r.slot], pos[r.slot] = r.tokens[-1], r.position
        columns = torch.tensor(pos, device=self.device)
        if max(pos) + 1 > cache.capacity:  # never with the planned capacities; a safety net
            cache.grow(max(pos) + 1)
        cache.step.columns = columns
        cache.step.width = max(pos) + 1
        att = (torch.arange(cache.step.width, device=self.device)[None, :] <= columns[:, None]).long()
        step_cache = DynamicCache()
        step_cache.layers = cache.layers
        out = self.model(input_ids=torch.tensor(ids, device=self.device)[:, None], attention_mask=att,
                         position_ids=columns[:, None], use_cache=True, logits_to_keep=1,
                         **{self._cache_kw: step_cache})
        live = torch.tensor([r.slot for r in rows], device=self.device)
        for row, token in zip(rows, self._pick(out.logits[live, -1], rows)):
            row.pending = token
            row.position += 1

    # ------------------------------------------------------------------ per-row decisions
    def _pick(self, logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        logits = logits.float()
        greedy = logits.argmax(dim=-1).tolist()
        out = []
        for b, row in enumerate(rows):
            if row.req.temperature <= 0:
                out.append(int(greedy[b]))
                continue
            probs = torch.softmax(logits[b].cpu() / row.req.temperature, dim=-1)
            if row.req.top_p < 1.0:
                sorted_p, order = probs.sort(descending=True)
                keep = sorted_p.cumsum(0) - sorted_p < row.req.top_p  # the smallest set reaching top_p
                probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
            out.append(int(torch.multinomial(probs, 1, generator=row.generator)))
        return out

    def _consume(self, row: _Row) -> bool:
        """Append the pending token; True when the row is finished."""
        if row.pending is None:
            return False
        token, row.pending = row.pending, None
        row.tokens.append(token)
        if token in self.eos_ids:
            row.finish = "stop"
        elif row.req.until and self.tail_has_stop(row.tokens, row.req.until):
            row.finish = "stop"
        elif len(row.tokens) >= row.req.max_new:
            row.finish = "length"
        return row.finish is not None

    def tail_has_stop(self, tokens: list[int], until: Sequence[str]) -> bool:
        """A stop string in the raw decoded tail (special tokens kept, as lm-eval's criteria see it)."""
        longest = max(len(s) for s in until)
        tail = self.tokenizer.decode(tokens[-(longest + 4):], skip_special_tokens=False)
        return any(s in tail for s in until)

    def _result(self, row: _Row) -> Generation:
        text = self.tokenizer.decode(row.tokens, skip_special_tokens=True)
        return Generation(cut_at_stop(text, row.req.until), row.finish or "length", len(row.req.ids), len(row.tokens),
                          row.req.truncated)

    # ------------------------------------------------------------------ fallback: static batches
    def _static(self, queue: list[GenerationRequest], results: list, progress) -> None:
        from transformers import StoppingCriteria, StoppingCriteriaList

        decoder = self

        class _Stops(StoppingCriteria):
            def __init__(self, start: int, until: list[str]):
                self.start, self.until = start, until

            def __call__(self, input_ids, scores, **kwargs):
                done = [bool(self.until) and decoder.tail_has_stop(ids[self.start:].tolist(), self.until)
                        for ids in input_ids]
                return torch.tensor(done, device=input_ids.device)

        groups: dict[tuple, list[GenerationRequest]] = {}
        for r in queue:
            groups.setdefault((tuple(r.until), r.max_new, r.temperature, r.top_p, r.seed), []).append(r)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        for (until, max_new, temperature, top_p, seed), members in groups.items():
            for start in range(0, len(members), self.batch_size):
                chunk = members[start:start + self.batch_size]
                width = max(len(r.ids) for r in chunk)
                ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
                att = torch.zeros((len(chunk), width), dtype=torch.long)
                for b, r in enumerate(chunk):
                    ids[b, width - len(r.ids):] = torch.tensor(r.ids)
                    att[b, width - len(r.ids):] = 1
                if temperature > 0:
                    torch.manual_seed(int(seed or 0))
                sampling = dict(do_sample=True, temperature=temperature, top_p=top_p, top_k=None) if temperature > 0 else \
                    dict(do_sample=False, temperature=None, top_p=None, top_k=None)
                out = self.model.generate(input_ids=ids.to(self.device), attention_mask=att.to(self.device),
                                          max_new_tokens=max_new, pad_token_id=pad_id,
                                          eos_token_id=sorted(self.eos_ids) or None,
                                          stopping_criteria=StoppingCriteriaList([_Stops(width, list(until))]), **sampling)
                for b, r in enumerate(chunk):
                    toks = out[b, width:].tolist()
                    row = _Row(r, tokens=[])
                    for t in toks:
                        row.pending = t
                        if self._consume(row):
                            break
                    results[r.index] = self._result(row)
                if progress is not None:
                    progress(len(chunk))


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """Text up to the first stop string (lm-eval drops the stop string and what follows)."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text
