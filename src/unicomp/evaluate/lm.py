"""The model-facing evaluation interface: score continuations, score documents, generate.

Tasks talk to models only through the three request types of lm-evaluation-harness
(`loglikelihood`, `loglikelihood_rolling`, `generate_until`), so every task runs on every model
(base or compressed) and our model object can be handed to lm-eval unchanged
(`unicomp.evaluate.lm_eval_adapter`).

Tokenisation and truncation follow lm-eval's `HFLM` exactly, so per-item log-likelihoods match
it. Speed comes from how requests are batched, not from changing what is computed:

* multiple-choice requests that share a context are packed into ONE row: the context once,
  then every continuation, each continuation attending to the context and to itself only
  (a block-diagonal 4D attention mask with explicit position ids). lm-eval runs the context
  once per choice.
* the output projection (the vocabulary matmul) runs only at positions that are scored.
* rows are sorted by length so padding is small, and padding is on the right where a causal
  model never looks, so results do not depend on batch size or padding side.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unicomp.errors import UnicompError
from unicomp.evaluate.generation import Decoder, Generation, GenerationRequest

ProgressHook = Callable[[int], None]
"""Called with the number of requests just finished; drives progress bars."""

Context = str | list[dict[str, str]]
"""A prompt: text, or chat messages rendered with the model's chat template."""

DEFAULT_MAX_LENGTH = 2048
_CONFIG_LENGTH_KEYS = ("n_positions", "max_position_embeddings", "n_ctx")
_TOKENIZER_INFINITY = 1000000000000000019884624838656
_PACKABLE_ATTENTION = ("sdpa", "eager")
_LOGIT_CHUNK = 1024  # scored positions per vocabulary projection


@dataclass
class _Row:
    """One model input row and the positions in it whose predictions are scored.

    `scores` holds, per request index, the row positions whose next-token distribution
    predicts the request's continuation tokens, and those tokens.
    """

    tokens: list[int]
    positions: list[int]
    segments: list[tuple[int, int]]  # (start, length) of each causally-attending block after the first
    scores: list[tuple[int, list[int], list[int]]]  # (request index, positions, target tokens)


def resolve_max_length(model: torch.nn.Module, tokenizer, default: int = DEFAULT_MAX_LENGTH) -> int:
    """The context length lm-eval's HFLM would use for this model (text config, config, tokenizer)."""
    config = model.config
    for cfg in (getattr(config, "text_config", None), config):
        if cfg is None:
            continue
        for key in _CONFIG_LENGTH_KEYS:
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
    tok_len = getattr(tokenizer, "model_max_length", None)
    if isinstance(tok_len, int) and 0 < tok_len < _TOKENIZER_INFINITY:
        return tok_len
    return default


class LanguageModel:
    """A causal LM plus tokenizer, answering lm-eval's three request types.

    Args:
        model: a transformers causal LM (eval mode; any dtype/device).
        tokenizer: its tokenizer.
        batch_size: rows per forward pass (a packed multiple-choice row counts once).
        max_length: context window; default as lm-eval's HFLM resolves it.
        add_bos_token: as HFLM's argument; None keeps the tokenizer's default.
        pack_choices: share the context between continuations (on by default; off reproduces
            lm-eval's one-row-per-choice batching, used to check equivalence and speed).
        max_batch_tokens: cap on padded tokens per forward pass (long rows get smaller batches).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        batch_size: int = 16,
        max_length: int | None = None,
        add_bos_token: bool | None = None,
        pack_choices: bool = True,
        max_gen_toks: int = 256,
        max_batch_tokens: int = 4096,
    ) -> None:
        if batch_size < 1:
            raise UnicompError(f"batch size must be at least 1, got {batch_size}", "pass --batch-size 1 or more")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length or resolve_max_length(model, tokenizer)
        self.add_bos_token = add_bos_token
        self.max_gen_toks = max_gen_toks
        self.max_batch_tokens = max_batch_tokens
        self._decoder: Decoder | None = None
        attn = getattr(model.config, "_attn_implementation", "sdpa")
        self.pack_choices = pack_choices and attn in _PACKABLE_ATTENTION
        window = getattr(model.config, "sliding_window", None)
        # A custom 4D mask replaces sliding-window masks; only pack rows that fit in the window.
        self._pack_limit = min(self.max_length, window) if isinstance(window, int) and window > 0 else self.max_length

    # ---------------------------------------------------------------- tokenisation (lm-eval rules)
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def prefix_token_id(self) -> int:
        tok = self.tokenizer
        return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id

    def _special_kwargs(self, text: str, add_special_tokens: bool | None = None) -> dict:
        if add_special_tokens is not None:
            return {"add_special_tokens": add_special_tokens}
        bos = self.tokenizer.decode(self.prefix_token_id)
        if bos and text.startswith(bos):
            return {"add_special_tokens": False}
        if self.add_bos_token is not None:
            return {"add_special_tokens": self.add_bos_token}
        return {}

    def tok_encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        return self.tokenizer.encode(text, **self._special_kwargs(text, add_special_tokens))

    def _encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        """Batch-encode with per-text special-token rules (fast tokenizers encode in parallel)."""
        out: list[list[int] | None] = [None] * len(texts)
        by_kwargs: dict[tuple, list[int]] = {}
        for i, text in enumerate(texts):
            key = tuple(sorted(self._special_kwargs(text).items()))
            by_kwargs.setdefault(key, []).append(i)
        for key, idxs in by_kwargs.items():
            enc = self.tokenizer([texts[i] for i in idxs], **dict(key))["input_ids"]
            for i, ids in zip(idxs, enc):
                out[i] = list(ids)
        return out  # type: ignore[return-value]

    def encode_pairs(self, requests: Sequence[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        """(context, continuation) -> token lists, exactly as lm-eval's `_encode_pair` does."""
        contexts, wholes, empties = [], [], []
        for i, (context, continuation) in enumerate(requests):
            if context == "":
                empties.append(i)
                continue
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces > 0:
                continuation = context[-n_spaces:] + continuation
                context = context[:-n_spaces]
            contexts.append(context)
            wholes.append(context + continuation)
        unique_ctx = list(dict.fromkeys(contexts))
        ctx_enc = dict(zip(unique_ctx, self._encode_many(unique_ctx)))
        whole_enc = self._encode_many(wholes)
        result: list[tuple[list[int], list[int]] | None] = [None] * len(requests)
        j = 0
        for i in range(len(requests)):
            if i in empties:
                continue
            c = ctx_enc[contexts[j]]
            result[i] = (c, whole_enc[j][len(c):])
            j += 1
        for i in empties:
            cont = self.tok_encode(requests[i][1], add_special_tokens=False)
            if cont and self.prefix_token_id != cont[0]:
                result[i] = ([self.prefix_token_id], cont)
            else:
                result[i] = (cont[:1], cont[1:])
        for i, (context, continuation) in enumerate(requests):
            if not result[i][1]:  # type: ignore[index]
                raise UnicompError(
                    f"continuation {continuation!r} encodes to no tokens after context {context[-40:]!r}",
                    "check the task's doc_to_choice / target delimiter",
                )
        return result  # type: ignore[return-value]

    # ---------------------------------------------------------------- request type 1: loglikelihood
    def loglikelihood(
        self, requests: Sequence[tuple[str, str]], progress: ProgressHook | None = None
    ) -> list[tuple[float, bool]]:
        """Log-probability of each continuation given its context, and whether it is greedy."""
        return self.loglikelihood_tokens(self.encode_pairs(requests), progress)

    def loglikelihood_tokens(
        self, pairs: Sequence[tuple[list[int], list[int]]], progress: ProgressHook | None = None
    ) -> list[tuple[float, bool]]:
        rows = self._plan_rows(pairs)
        results: list[tuple[float, bool] | None] = [None] * len(pairs)
        rows.sort(key=lambda r: -len(r.tokens))
        for batch in self._batches(rows):
            for idx, value in self._score_batch(batch):
                results[idx] = value
            if progress is not None:
                progress(sum(len(r.scores) for r in batch))
        return results  # type: ignore[return-value]

    def _batches(self, rows: list[_Row]):
        """Up to `batch_size` rows per forward, and at most `max_batch_tokens` padded tokens.

        Rows are sorted longest first, so the first row of a batch sets its width. The token cap
        keeps long windows from being batched into attention matrices that no longer fit in
        cache (on CPU, 8 x 2048-token rows ran 4x slower per token than 1 x 2048).
        """
        start = 0
        while start < len(rows):
            width = len(rows[start].tokens)
            fit = max(1, self.max_batch_tokens // max(width, 1))
            end = min(len(rows), start + min(self.batch_size, fit))
            yield rows[start:end]
            start = end

    def _plan_rows(self, pairs: Sequence[tuple[list[int], list[int]]]) -> list[_Row]:
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, _) in enumerate(pairs):
            groups.setdefault(tuple(ctx), []).append(i)
        rows: list[_Row] = []
        for ctx_key, members in groups.items():
            ctx = list(ctx_key)
            packed_len = len(ctx) + sum(len(pairs[i][1]) - 1 for i in members)
            if self.pack_choices and len(members) > 1 and packed_len <= self._pack_limit:
                rows.append(self._packed_row(ctx, [(i, pairs[i][1]) for i in members]))
            else:
                rows.extend(self._single_row(ctx, pairs[i][1], i) for i in members)
        return rows

    def _single_row(self, ctx: list[int], cont: list[int], index: int) -> _Row:
        """lm-eval's row: (ctx + cont) truncated from the left to max_length + 1, minus the last token."""
        if len(cont) > self.max_length:
            raise UnicompError(
                f"a continuation of {len(cont)} tokens exceeds the model's context of {self.max_length}",
                "use a model with a longer context or a shorter target",
            )
        tokens = (ctx + cont)[-(self.max_length + 1):][:-1]
        n = len(tokens)
        positions = list(range(n))
        return _Row(tokens, positions, [], [(index, list(range(n - len(cont), n)), cont)])

    def _packed_row(self, ctx: list[int], conts: list[tuple[int, list[int]]]) -> _Row:
        tokens = list(ctx)
        positions = list(range(len(ctx)))
        segments: list[tuple[int, int]] = []
        scores = []
        for index, cont in conts:
            start = len(tokens)
            body = cont[:-1]
            tokens.extend(body)
            positions.extend(range(len(ctx), len(ctx) + len(body)))
            if body:
                segments.append((start, len(body)))
            scored = [len(ctx) - 1] + list(range(start, start + len(body)))
            scores.append((index, scored, cont))
        return _Row(tokens, positions, segments, scores)

    def _attention_mask(self, batch: list[_Row], width: int, dtype: torch.dtype) -> torch.Tensor | None:
        """Additive 4D mask: causal within the shared prefix, block-diagonal across continuations.

        Returns None when no row is packed, so the model uses its own (fastest) causal path.
        """
        if not any(r.segments for r in batch):
            return None
        allowed = torch.zeros(len(batch), width, width, dtype=torch.bool)
        causal = torch.tril(torch.ones(width, width, dtype=torch.bool))
        for b, row in enumerate(batch):
            n = len(row.tokens)
            prefix = row.segments[0][0] if row.segments else n
            allowed[b, :n, :prefix] = causal[:n, :prefix]
            for start, length in row.segments:
                end = start + length
                allowed[b, start:end, start:end] = causal[:length, :length]
            pad = torch.arange(n, width)
            allowed[b, pad, pad] = True  # padding attends to itself: no empty rows, no NaNs
        mask = torch.zeros(allowed.shape, dtype=dtype)
        mask.masked_fill_(~allowed, torch.finfo(dtype).min)
        return mask[:, None]

    @torch.inference_mode()
    def _score_batch(self, batch: list[_Row]) -> list[tuple[int, tuple[float, bool]]]:
        width = max(len(r.tokens) for r in batch)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        pos = torch.zeros((len(batch), width), dtype=torch.long)
        for b, row in enumerate(batch):
            ids[b, :len(row.tokens)] = torch.tensor(row.tokens)
            pos[b, :len(row.tokens)] = torch.tensor(row.positions)
            if len(row.tokens) < width:
                pos[b, len(row.tokens):] = torch.arange(len(row.tokens), width)
        dtype = next(self.model.parameters()).dtype
        mask = self._attention_mask(batch, width, dtype)
        device = self.device
        hidden = self._hidden_states(
            ids.to(device), pos.to(device), None if mask is None else mask.to(device)
        )
        flat_rows, flat_pos, flat_tgt, owners = [], [], [], []
        for b, row in enumerate(batch):
            for index, positions, targets in row.scores:
                flat_rows.extend([b] * len(positions))
                flat_pos.extend(positions)
                flat_tgt.extend(targets)
                owners.append((index, len(positions)))
        h = hidden[torch.tensor(flat_rows, device=device), torch.tensor(flat_pos, device=device)]
        targets = torch.tensor(flat_tgt, device=device)
        # The vocabulary projection in chunks: scored positions x vocabulary can be gigabytes
        # (8 windows x 2048 tokens x 49k vocab = 3 GB in fp32), and memory traffic dominates.
        lp_parts, greedy_parts = [], []
        for start in range(0, h.shape[0], _LOGIT_CHUNK):
            logprobs = F.log_softmax(self._logits(h[start:start + _LOGIT_CHUNK]).float(), dim=-1)
            tgt = targets[start:start + _LOGIT_CHUNK]
            lp_parts.append(logprobs.gather(1, tgt[:, None]).squeeze(1))
            greedy_parts.append(logprobs.argmax(dim=-1) == tgt)
        token_lp, greedy = torch.cat(lp_parts), torch.cat(greedy_parts)
        out = []
        offset = 0
        for index, count in owners:
            lp = float(token_lp[offset:offset + count].sum())
            out.append((index, (lp, bool(greedy[offset:offset + count].all()))))
            offset += count
        return out

    def _hidden_states(self, ids: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        decoder = self.model.get_decoder()
        out = decoder(input_ids=ids, position_ids=pos, attention_mask=mask, use_cache=False)
        return out.last_hidden_state

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The output head on selected positions only, with the model's logit soft-capping if any."""
        logits = self.model.get_output_embeddings()(hidden)
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        return logits

    # ---------------------------------------------------------------- request type 2: rolling
    def rolling_windows(self, text: str) -> list[tuple[list[int], list[int]]]:
        """lm-eval's disjoint rolling windows: every token predicted once, context_len 1."""
        tokens = self.tok_encode(text)
        return [_disjoint(w) for w in _rolling_windows(tokens, self.prefix_token_id, self.max_length)]

    def loglikelihood_rolling(
        self, texts: Sequence[str], progress: ProgressHook | None = None
    ) -> list[tuple[float, int]]:
        """Total log-probability of each whole text, and its number of tokens."""
        windows, owners = [], []
        for i, text in enumerate(texts):
            for w in self.rolling_windows(text):
                windows.append(w)
                owners.append(i)
        totals = [0.0] * len(texts)
        counts = [0] * len(texts)
        scores = self.loglikelihood_tokens(windows)
        for owner, (_, cont), (lp, _) in zip(owners, windows, scores):
            totals[owner] += lp
            counts[owner] += len(cont)
        if progress is not None:
            progress(len(texts))
        return list(zip(totals, counts))

    def fixed_window_nll(
        self, text: str, seq_len: int, max_windows: int | None = None, progress: ProgressHook | None = None
    ) -> list[float]:
        """Mean next-token NLL of each non-overlapping `seq_len` window of the tokenised text.

        This is the perplexity protocol of the GPTQ, SparseGPT and Wanda papers
        (`"\\n\\n".join(test rows)`, windows of 2048 tokens, the first token of each window
        unscored), not lm-eval's document-level protocol.
        """
        tokens = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        n = len(tokens) // seq_len
        if max_windows is not None:
            n = min(n, max_windows)
        if n == 0:
            raise UnicompError(
                f"text of {len(tokens)} tokens is shorter than one window of {seq_len}",
                "lower seq_len or use more text",
            )
        pairs = [(tokens[i * seq_len:i * seq_len + 1], tokens[i * seq_len + 1:(i + 1) * seq_len]) for i in range(n)]
        saved, self.max_length = self.max_length, max(self.max_length, seq_len)
        try:
            scores = self.loglikelihood_tokens(pairs, progress)
        finally:
            self.max_length = saved
        return [-lp / (seq_len - 1) for lp, _ in scores]

    # ---------------------------------------------------------------- request type 3: generation
    def generate_until(self, requests: Sequence[tuple[Context, dict]], progress: ProgressHook | None = None) -> list[str]:
        """The answer to each prompt, cut before the first stop string (lm-eval's contract)."""
        return [g.text for g in self.generate(requests, progress)]

    def generate(self, requests: Sequence[tuple[Context, dict]], progress: ProgressHook | None = None) -> list[Generation]:
        """Decode each (prompt or chat messages, kwargs) request.

        kwargs: `until` (stop strings), `max_gen_toks`, and for sampling `temperature` > 0,
        `top_p` and `seed` (each request's own: the caller varies it per item). Prompts longer than the context minus `max_gen_toks` lose their
        oldest tokens (lm-eval's policy); `Generation.truncated_tokens` says how many.
        """
        prepared = [self._generation_request(i, ctx, kw) for i, (ctx, kw) in enumerate(requests)]
        if not prepared:
            return []
        return self.decoder.run(prepared, progress)

    @property
    def decoder(self) -> Decoder:
        if self._decoder is None or self._decoder.batch_size != self.batch_size:
            self._decoder = Decoder(self.model, self.tokenizer, self.batch_size, self.eos_token_ids())
        return self._decoder

    def eos_token_ids(self) -> list[int]:
        """The ids that end generation: the model's generation config's (what `generate` uses), else the tokenizer's."""
        config = getattr(self.model, "generation_config", None)
        eos = getattr(config, "eos_token_id", None) if config is not None else None
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            return []
        return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]

    @property
    def supports_chat(self) -> bool:
        """Whether chat-message prompts can be rendered (the tokenizer has a chat template)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def render(self, context: Context) -> str:
        """A prompt string, or chat messages rendered with the tokenizer's chat template."""
        if isinstance(context, str):
            return context
        if not getattr(self.tokenizer, "chat_template", None):
            raise UnicompError(
                f"the tokenizer of this model has no chat template, and a task asked for chat messages "
                f"({len(context)} messages)", "use an instruction-tuned model, or run the task with its chat template off")
        return self.tokenizer.apply_chat_template(list(context), tokenize=False, add_generation_prompt=True)

    def _generation_request(self, index: int, context: Context, kwargs: dict) -> GenerationRequest:
        max_new = int(kwargs.get("max_gen_toks", self.max_gen_toks))
        limit = self.max_length - max_new
        if max_new < 1 or limit <= 0:
            raise UnicompError(
                f"max_gen_toks={max_new} leaves no room for a prompt in a context of {self.max_length} tokens",
                "lower max_gen_toks (at least 1) or use a model with a longer context")
        ids = self.tok_encode(self.render(context)) or [self.prefix_token_id]  # an empty prompt starts from BOS
        until = kwargs.get("until") or []
        until = [until] if isinstance(until, str) else [s for s in until if s]
        return GenerationRequest(index, ids[-limit:], until, max_new, float(kwargs.get("temperature") or 0.0),
                                 float(kwargs.get("top_p", 1.0) or 1.0), kwargs.get("seed"), max(0, len(ids) - limit))


def _rolling_windows(tokens: list[int], prefix_token: int, max_seq_len: int, context_len: int = 1):
    if not tokens:
        return
    pred_len = max_seq_len - context_len + 1
    first = min(max_seq_len, len(tokens))
    yield [prefix_token] + tokens[: first - 1], tokens[:first]
    predicted = first
    while predicted < len(tokens):
        window_pred = min(len(tokens) - predicted, pred_len)
        end = predicted + window_pred
        yield tokens[end - max_seq_len - 1: end - 1], tokens[end - window_pred: end]
        predicted += window_pred


def _disjoint(window: tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
    ctx, pred = window
    return ctx[: len(ctx) - (len(pred) - 1)], pred
