"""Decoding with continuous batching: the `generate_until` request type, fast on a CPU.

`transformers.generate` (and lm-eval's HFLM on top of it) decodes a fixed batch until its
longest answer ends: a batch of short answers waits for one long one, and finished rows keep
being computed. Here a batch is a set of *slots*: a row that stops (end-of-sequence, a stop
string, or its token budget) leaves at once and the next prompt (longest first) is prefilled
alone and joins, its keys and values left-padded into the shared cache. Each step feeds one
token per live row; the cache is preallocated, so a step writes one column instead of copying
the whole cache as `DynamicCache` does.

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


@functools.cache
def _slot_layer_class():
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        """Keys and values of one layer for all live rows, preallocated along the sequence axis:
        `update` writes the new column in place and returns views of the filled part."""

        def __init__(self, key_parts: list[torch.Tensor], value_parts: list[torch.Tensor], width: int,
                     capacity: int) -> None:
            """Stack row groups, each right-aligned at `width` with zeros on its left (masked, but
            finite: a masked position still multiplies its value by 0). Columns past `width` are
            left unset: nothing reads them before `update` writes them."""
            super().__init__()
            self._k = _stack_right_aligned(key_parts, width, capacity)
            self._v = _stack_right_aligned(value_parts, width, capacity)
            self.n = width
            self.device = self._k.device
            self.is_initialized = True
            self._views()

        def _views(self) -> None:
            self.keys, self.values = self._k[:, :, :self.n], self._v[:, :, :self.n]

        def update(self, key_states, value_states, *args, **kwargs):
            s = key_states.shape[-2]
            if self.n + s > self._k.shape[2]:
                self._k = torch.cat([self._k, torch.empty_like(self._k)], dim=2)
                self._v = torch.cat([self._v, torch.empty_like(self._v)], dim=2)
            self._k[:, :, self.n:self.n + s] = key_states
            self._v[:, :, self.n:self.n + s] = value_states
            self.n += s
            self._views()
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.n

    return SlotLayer


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
        layers: list | None = None
        mask = torch.zeros(0, 0, dtype=torch.long)
        queue = list(queue)
        while queue or rows:
            joining = []
            while len(rows) + len(joining) < self.batch_size and queue:
                joining.append(self._prefill(queue.pop(0)))
            if joining:
                layers, mask = self._join(layers, mask, rows, joining)
                rows.extend(row for row, _ in joining)
            finished = [i for i, row in enumerate(rows) if self._consume(row)]
            if finished:
                for i in finished:
                    results[rows[i].req.index] = self._result(rows[i])
                keep = [i for i in range(len(rows)) if i not in set(finished)]
                rows = [rows[i] for i in keep]
                layers, mask = self._select(layers, mask, keep, rows)
                if progress is not None:
                    progress(len(finished))
                if queue:
                    continue  # refill the freed slots before the next step
            if rows:
                self._step(rows, layers, mask)
                mask = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1)

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

    def _join(self, layers, mask, rows, joining):
        """Live rows plus the joining ones, all left-padded to one width."""
        width = max([mask.shape[1]] + [kv[0][0].shape[2] for _, kv in joining])
        remaining = max(r.req.max_new - len(r.tokens) for r in rows + [row for row, _ in joining])
        capacity = width + remaining + 1
        new_masks = [mask] if rows else []
        if rows:
            pad = width - mask.shape[1]
            new_masks = [torch.cat([torch.zeros(len(rows), pad, dtype=torch.long), mask], dim=1)]
        for row, kv in joining:
            n = kv[0][0].shape[2]
            new_masks.append(torch.cat([torch.zeros(1, width - n, dtype=torch.long), torch.ones(1, n, dtype=torch.long)], 1))
        merged = []
        for li in range(len(joining[0][1])):
            keys = ([layers[li].keys] if rows else []) + [kv[li][0] for _, kv in joining]
            values = ([layers[li].values] if rows else []) + [kv[li][1] for _, kv in joining]
            merged.append(_slot_layer_class()(keys, values, width, capacity))
        return merged, torch.cat(new_masks)

    def _select(self, layers, mask, keep: list[int], rows: list[_Row]):
        """Only the kept rows; columns that are padding in every kept row are dropped."""
        if not keep:
            return None, torch.zeros(0, 0, dtype=torch.long)
        mask = mask[keep]
        first = int((mask.sum(0) > 0).nonzero()[0]) if mask.numel() else 0
        mask = mask[:, first:]
        remaining = max(r.req.max_new - len(r.tokens) for r in rows)
        capacity = mask.shape[1] + remaining + 1
        idx = torch.tensor(keep, device=self.device)
        width = mask.shape[1]
        layers = [_slot_layer_class()([layer.keys[idx, :, first:]], [layer.values[idx, :, first:]], width, capacity)
                  for layer in layers]
        return layers, mask

    def _step(self, rows: list[_Row], layers: list, mask: torch.Tensor) -> None:
        from transformers import DynamicCache

        cache = DynamicCache()
        cache.layers = layers
        ids = torch.tensor([[r.tokens[-1]] for r in rows], device=self.device)
        pos = torch.tensor([[r.position] for r in rows], device=self.device)
        att = torch.cat([mask, torch.ones(len(rows), 1, dtype=torch.long)], dim=1).to(self.device)
        out = self.model(input_ids=ids, attention_mask=att, position_ids=pos, use_cache=True, logits_to_keep=1,
                         **{self._cache_kw: cache})
        for row, token in zip(rows, self._pick(out.logits[:, -1], rows)):
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


def _stack_right_aligned(parts: list[torch.Tensor], width: int, capacity: int) -> torch.Tensor:
    """One [rows, heads, capacity, dim] buffer: each part's columns end at `width`, zeros before."""
    first = parts[0]
    out = first.new_empty(sum(p.shape[0] for p in parts), first.shape[1], capacity, first.shape[3])
    row = 0
    for part in parts:
        b, n = part.shape[0], part.shape[2]
        out[row:row + b, :, :width - n].zero_()
        out[row:row + b, :, width - n:width] = part
        row += b
    return out


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """Text up to the first stop string (lm-eval drops the stop string and what follows)."""
    for stop in stops:
        if stop:
            text = text.split(stop)[0]
    return text
