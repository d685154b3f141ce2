"""Low-Rank Clone (LRC; Hao et al. 2025): a student with a narrower residual stream (hidden d_s < d_t)
whose weights are learned projections of the frozen teacher's, trained on the teacher's logits and
on its attention and MLP outputs seen through the same projections, then materialised into a plain
checkpoint of the teacher's architecture.

Per decoder layer, with the teacher's weights W (out x in) and trainable projections P (d_t x d_s):
- q, k, v:     W_s = W diag(g_in) P_attn_in          (one projection for the three, as LRC's default)
- o:           W_s = P_attn_out^T W                  (its bias: P_attn_out^T b)
- gate, up:    W_s = W diag(g_post) P_gate / P_up
- down:        W_s = P_down^T W
and model-wide: the embedding E P_emb, the output head W_head diag(g_final) P_head. Head counts,
head_dim and the MLP width are the teacher's; only the residual stream narrows.

The teacher's RMSNorm scales g are folded into the weights that read the norm's output (exact: the
norm's output feeds only them; computed as W (g * P), so no weight is copied), the student's own
norms start at 1 as LRC's do, and identity projections give back the teacher. A tied teacher gets an
untied student: its head carries g_final.

Initialisation (`init: pca`, the default; LRC itself starts from random projections): every
projection starts at U, the top-d_s principal directions of the teacher's normalised residual
stream (the inputs of every norm, pooled over layers, on calibration data), and each student norm
at sqrt(f d_t / d_s), with f the share of that site's energy U keeps, so the student starts as the
teacher restricted to that subspace (RMSNorm over d_s channels would otherwise rescale it). At
d_s = d_t, U is a rotation and the student is the teacher exactly (SliceGPT's observation).

Alignment (the activation_mse loss term): for each layer's attention output a (o_proj's output) and
MLP output m (down_proj's), the relative squared error ||a_s - a_t P_attn_out||^2 / ||a_t P_attn_out||^2
(likewise with P_down), averaged over layers and both sites. The relative form makes its weight
independent of the model's activation scale; gradients reach P through both sides, as in LRC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch.func import functional_call

from unicomp.compress.distill.calibration_pass import run_hooked
from unicomp.compress.distill.student_config import derive_config, load_weights
from unicomp.errors import UnicompError
from unicomp.models.anatomy import anatomy_of, decoder_layers

INPUT_SIDE = {"self_attn.q_proj": ("attn_in", "input_layernorm"), "self_attn.k_proj": ("attn_in", "input_layernorm"),
              "self_attn.v_proj": ("attn_in", "input_layernorm"), "mlp.gate_proj": ("gate", "post_attention_layernorm"),
              "mlp.up_proj": ("up", "post_attention_layernorm")}
OUTPUT_SIDE = {"self_attn.o_proj": "attn_out", "mlp.down_proj": "down"}
LAYER_PROJECTIONS = ("attn_in", "attn_out", "gate", "up", "down")
NORMS = ("input_layernorm", "post_attention_layernorm")


def _student_config(teacher_config: Any, hidden_size: int) -> Any:
    t = teacher_config
    if hidden_size > t.hidden_size:
        raise UnicompError(f"the student's hidden_size {hidden_size} is larger than the teacher's {t.hidden_size}",
                           "Low-Rank Clone narrows the residual stream: ask for at most the teacher's width")
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    return derive_config(t, {"hidden_size": hidden_size, "head_dim": head_dim, "tie_word_embeddings": False},
                         f"choose a hidden_size the architecture accepts (Llama: a multiple of {t.num_attention_heads}, "
                         "the head count)")


def _check_architecture(teacher: torch.nn.Module) -> None:
    anatomy = anatomy_of(teacher)
    if anatomy.norm_weight_offset or anatomy.layers != "model.layers":
        raise UnicompError(f"Low-Rank Clone does not support {type(teacher).__name__} yet",
                           "use a Llama, Mistral or Qwen-family teacher (RMSNorm scales multiply, no offset)")
    for layer in decoder_layers(teacher):
        names = {n for n, _ in layer.named_modules()}
        missing = [n for n in (*INPUT_SIDE, *OUTPUT_SIDE, *NORMS) if n not in names]
        if missing:
            raise UnicompError(f"Low-Rank Clone cannot find {missing[0]} in {type(teacher).__name__}'s layers",
                               "this architecture variant is not supported yet")


@torch.no_grad()
def residual_pca(teacher: torch.nn.Module, batches: Iterable[dict[str, torch.Tensor]],
                 hidden_size: int) -> tuple[torch.Tensor, dict[str, float]]:
    """U [d_t, d_s]: the top principal directions of the normalised inputs of every norm (pooled),
    and per norm site the share f of its energy that U keeps (a second pass: one d x d matrix in
    memory, not one per site)."""
    batches = list(batches)
    sites = {f"model.layers.{i}.{n}": getattr(layer, n) for i, layer in enumerate(decoder_layers(teacher)) for n in NORMS}
    sites["model.norm"] = teacher.model.norm
    d = teacher.config.hidden_size
    device = next(teacher.parameters()).device
    pooled = torch.zeros(d, d, dtype=torch.float64, device=device)
    kept = {name: [0.0, 0.0] for name in sites}  # per site: energy inside U, total energy
    state: dict[str, Any] = {"mask": None, "u": None}

    def hook(name: str):
        def fn(module, args) -> None:  # noqa: ANN001 - a pre-hook: returning None leaves the input alone
            x = args[0].float()
            x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
            if state["mask"] is not None:
                x = x * state["mask"][..., None].to(x.device)
            x = x.reshape(-1, d)
            if state["u"] is None:
                pooled.add_((x.T @ x).double())
            else:
                kept[name][0] += float((x @ state["u"]).pow(2).sum())
                kept[name][1] += float(x.pow(2).sum())
        return fn

    for _ in range(2):
        handles = [m.register_forward_pre_hook(hook(n)) for n, m in sites.items()]
        run_hooked(teacher, batches, handles, state, "the residual stream's principal directions")
        if state["u"] is None:
            eigenvalues, vectors = torch.linalg.eigh(pooled)
            state["u"] = vectors[:, eigenvalues.argsort(descending=True)[:hidden_size]].float()
    return state["u"], {name: inside / max(total, 1e-30) for name, (inside, total) in kept.items()}


class LowRankClone(torch.nn.Module):
    """The trainable clone: projections and student norms are its parameters; the teacher's weights
    (norm scales folded in) are frozen tensors outside its state dict, so a training checkpoint holds
    only what training changes. Call it like the student model; `materialise()` gives the student."""

    def __init__(self, teacher: torch.nn.Module, hidden_size: int, *, init: str = "pca",
                 batches: Iterable[dict[str, torch.Tensor]] | None = None, seed: int = 0) -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM

        _check_architecture(teacher)
        config = _student_config(teacher.config, hidden_size)
        dtype = next(teacher.parameters()).dtype
        device = next(teacher.parameters()).device
        d_t, d_s = teacher.config.hidden_size, hidden_size
        self.frozen = {k: v.detach() for k, v in teacher.state_dict().items()}  # shared with the teacher: no copy
        if "lm_head.weight" not in self.frozen:  # tied
            self.frozen["lm_head.weight"] = self.frozen["model.embed_tokens.weight"]
        n_layers = len(decoder_layers(teacher))
        if init == "pca":
            if batches is None:
                raise UnicompError("PCA initialisation needs calibration batches", "pass batches, or init: random")
            u, kept = residual_pca(teacher, batches, d_s)
            scale = {name: (f * d_t / d_s) ** 0.5 for name, f in kept.items()}
        elif init == "random":  # LRC's own start: independent Gaussian projections
            g = torch.Generator().manual_seed(seed)
            u, scale = None, {}
        else:
            raise UnicompError(f"unknown Low-Rank Clone init {init!r}", "use pca or random")

        def start() -> torch.Tensor:
            p = u.clone() if u is not None else torch.randn(d_t, d_s, generator=g) / d_t**0.5
            return torch.nn.Parameter(p.to(device=device, dtype=torch.float32))

        self.projections = torch.nn.ParameterDict(
            {f"layer{i}_{kind}": start() for i in range(n_layers) for kind in LAYER_PROJECTIONS}
            | {"embed": start(), "head": start()})
        norm_sites = [f"model.layers.{i}.{n}" for i in range(n_layers) for n in NORMS] + ["model.norm"]
        self.norms = torch.nn.ParameterDict({site.replace(".", "_"): torch.nn.Parameter(
            torch.full((d_s,), scale.get(site, 1.0), device=device, dtype=torch.float32)) for site in norm_sites})
        self.student_config = config
        self._skeleton = [AutoModelForCausalLM.from_config(config, dtype=dtype).to(device).eval()]
        self._n_layers = n_layers
        self._captured: dict[str, list[torch.Tensor]] = {"student": [], "teacher": []}
        self._hooks: list[Any] = []

    def student_state(self) -> dict[str, torch.Tensor]:
        """Every student weight, as a differentiable function of the projections."""
        f, p = self.frozen, self.projections
        state: dict[str, torch.Tensor] = {}
        for key, value in f.items():
            parts = key.split(".")
            if parts[:2] == ["model", "layers"]:
                i, leaf = int(parts[2]), ".".join(parts[3:])
                module, _, kind = leaf.rpartition(".")
                if module in INPUT_SIDE and kind == "weight":  # W diag(g) P = W (g * P): g folded into P
                    proj, norm = INPUT_SIDE[module]
                    g = f[f"model.layers.{i}.{norm}.weight"]
                    state[key] = value @ (g.float()[:, None] * p[f"layer{i}_{proj}"]).to(value.dtype)
                elif module in OUTPUT_SIDE:
                    proj = p[f"layer{i}_{OUTPUT_SIDE[module]}"].to(value.dtype)
                    state[key] = proj.T @ value if kind == "weight" else value @ proj
                elif module in NORMS:
                    state[key] = self.norms[key.removesuffix(".weight").replace(".", "_")].to(value.dtype)
                else:  # biases of q/k/v/gate/up, per-head q/k norms: the student keeps them as they are
                    state[key] = value
            elif key == "model.norm.weight":
                state[key] = self.norms["model_norm"].to(value.dtype)
            elif key == "model.embed_tokens.weight":
                continue  # the forward embeds through E[ids] P_embed: cheaper than projecting all of E
            elif key == "lm_head.weight":
                g = f["model.norm.weight"]
                state[key] = value @ (g.float()[:, None] * p["head"]).to(value.dtype)
            else:
                raise UnicompError(f"Low-Rank Clone does not know how to project {key}",
                                   "this architecture variant is not supported yet")
        return state

    def forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        embed = self.frozen["model.embed_tokens.weight"]
        inputs_embeds = torch.nn.functional.embedding(input_ids, embed) @ self.projections["embed"].to(embed.dtype)
        return functional_call(self._skeleton[0], self.student_state(), args=(),
                               kwargs={"inputs_embeds": inputs_embeds, **kwargs}, strict=False)

    @torch.no_grad()
    def materialise(self) -> torch.nn.Module:
        """The student as a plain model of the teacher's architecture (its own copy of every weight;
        the model the clone runs through, now holding them)."""
        student = self._skeleton[0]
        state = {k: v.detach().clone() for k, v in self.student_state().items()}
        embed = self.frozen["model.embed_tokens.weight"]
        state["model.embed_tokens.weight"] = embed @ self.projections["embed"].to(embed.dtype)
        return load_weights(student, state, "Low-Rank Clone")

    # --- activation alignment (the trainer's activation_mse term) -------------------------------------
    @contextlib.contextmanager
    def watching(self, teacher: torch.nn.Module) -> Iterator[None]:
        """Hook the teacher's and the student's attention and MLP outputs while training."""
        def keep(side: str):
            def fn(module, args, output) -> None:  # noqa: ANN001
                self._captured[side].append(output)
            return fn

        for side, model in (("student", self._skeleton[0]), ("teacher", teacher)):
            for layer in decoder_layers(model):
                for name in OUTPUT_SIDE:
                    self._hooks.append(layer.get_submodule(name).register_forward_hook(keep(side)))
        try:
            yield
        finally:
            for h in self._hooks:
                h.remove()
            self._hooks.clear()
            self._captured = {"student": [], "teacher": []}

    def alignment_loss(self) -> torch.Tensor:
        """Mean relative squared error of the student's attention and MLP outputs against the teacher's
        projected ones, from the last student and teacher forwards (then forgotten)."""
        student, teacher = self._captured["student"], self._captured["teacher"]
        self._captured = {"student": [], "teacher": []}
        expected = 2 * self._n_layers
        if len(student) != expected or len(teacher) != expected:
            raise UnicompError(f"activation alignment saw {len(student)} student and {len(teacher)} teacher outputs, "
                               f"expected {expected} each", "run the student, then the teacher, inside watching()")
        total = torch.zeros((), device=student[0].device)
        for index, (a_s, a_t) in enumerate(zip(student, teacher)):
            layer, site = divmod(index, 2)
            proj = self.projections[f"layer{layer}_{'attn_out' if site == 0 else 'down'}"]
            target = a_t.float() @ proj
            total = total + (a_s.float() - target).pow(2).sum() / target.pow(2).sum().clamp(min=1e-12)
        return total / expected


__all__ = ["LowRankClone", "residual_pca"]
