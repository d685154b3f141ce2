"""Quantized checkpoints in the compressed-tensors layout (what vLLM serves), written and read back exactly.

Storages (the `--storage` names):

- `compressed-tensors`: picks the format from the weights — `int-quantized` when the linears
  quantize activations too (W8A8), `pack-quantized` otherwise (weight-only W4A16, W8A16, ...).
- `pack-quantized`: weight-only int codes packed into int32 (`weight_packed`, `weight_scale`,
  `weight_shape`, and a packed `weight_zero_point` when asymmetric).
- `int-quantized`: int8 `weight` + `weight_scale`, activations quantized dynamically per token
  (W8A8; vLLM's int8 kernels need symmetric per-channel 8-bit weights).

Grid mapping: our codes are unsigned (q in [0, 2^b - 1], zero z, value (q - z) * s);
compressed-tensors stores signed codes q - 2^(b-1) and a signed zero point z - 2^(b-1)
(omitted when symmetric, where z = 2^(b-1)), and dequantizes (code - zp) * s, the same
integer times the same scale. Codes are packed directly from q with the library's own
`pack_to_int32` (no float re-quantization). Scales are stored in the model's dtype when that
is exact (always for bf16/fp32 models: our scales are bf16 values), else in float32.

The `quantization_config` block is the library's own: a `QuantizationConfig` of
`QuantizationScheme`/`QuantizationArgs` written by `ModelCompressor.update_config`, i.e. the
same JSON compressed-tensors 0.20 writes after compressing a model itself.

Who reads what: vLLM's kernels serve 4- and 8-bit pack-quantized and W8A8 int-quantized; 2/3-bit
folders are valid compressed-tensors (the library decompresses them) but vLLM has no kernels for
them. transformers 5.24 loads all of them with `CompressedTensorsConfig(dequantize=True)`; its
default compressed-in-memory path fails on asymmetric pack-quantized (packed zero-point shape).

Act-order: compressed-tensors 0.20 and vLLM removed `actorder="group"` (runtime `weight_g_idx`),
so only contiguous groups can be exported; a `g_idx` whose groups are aligned contiguous blocks
in another order is stored exactly by reordering the scale columns. Older folders that carry
`weight_g_idx` are still read. Reading never runs checkpoint code: config.json + safetensors only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import load_file, save_file

from unicomp.compress.quant.grid import SUPPORTED_BITS, QuantizedWeight, QuantScheme, attach
from unicomp.errors import UnicompError

if TYPE_CHECKING:  # the library is imported lazily: it is heavy and only needed for this storage
    from compressed_tensors.quantization import QuantizationConfig, QuantizationScheme

AUTO = "compressed-tensors"
PACK_QUANTIZED = "pack-quantized"
INT_QUANTIZED = "int-quantized"
STORAGES = (AUTO, PACK_QUANTIZED, INT_QUANTIZED)
W8A8_ACTIVATIONS = "int8-per-token"
READABLE_FORMATS = (PACK_QUANTIZED, INT_QUANTIZED, "naive-quantized", "mixed-precision")
_LEGACY_ACTORDER = ("group", "dynamic", True)  # runtime g_idx orderings dropped in compressed-tensors 0.20
_DENSE_HINT = "or save with --storage dense (fake-quantized float weights)"


# ----------------------------------------------------------------------------- collecting


@dataclass(frozen=True)
class QuantizedLinear:
    """One quantized linear as the exporter plans it. Its codes are fetched again when written, so a
    packed model never holds every layer's unpacked int32 codes at once."""

    name: str
    format: str
    scheme: QuantScheme
    activations: str | None


def quantized_weight_of(module: torch.nn.Module) -> QuantizedWeight | None:
    """The module's QuantizedWeight: `.quantized` on fake-quantized linears, else a packed module's own."""
    qw = getattr(module, "quantized", None)
    if isinstance(qw, QuantizedWeight):
        return qw
    to_qw = getattr(module, "to_quantized_weight", None)
    return to_qw() if callable(to_qw) else None


def _is_quantized(module: torch.nn.Module) -> bool:
    return (isinstance(getattr(module, "quantized", None), QuantizedWeight)
            or callable(getattr(module, "to_quantized_weight", None)))


def _quantized_modules(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module]]:
    return ((name, module) for name, module in model.named_modules() if _is_quantized(module))


# ----------------------------------------------------------------------------- checks


def _weight_kind(qw: QuantizedWeight) -> str:
    s = qw.scheme
    group = f"group {s.group_size}" if s.group_size else "per-channel"
    acts = "int8 activations" if qw.activations else "float activations"
    return f"{s.bits}-bit {'symmetric' if s.symmetric else 'asymmetric'} {group} weights with {acts}"


def choose_format(name: str, qw: QuantizedWeight, storage: str) -> str:
    """The compressed-tensors format that holds `qw` under `storage`, or a one-line error saying why none does."""
    if qw.activations not in (None, W8A8_ACTIVATIONS):
        raise UnicompError(f"{name} quantizes activations as {qw.activations!r}, which compressed-tensors export does not know",
                           f"use activations None or {W8A8_ACTIVATIONS!r}, {_DENSE_HINT}")
    fmt = (INT_QUANTIZED if qw.activations else PACK_QUANTIZED) if storage == AUTO else storage
    if fmt == PACK_QUANTIZED and qw.activations:
        raise UnicompError(f"pack-quantized holds weight-only quantization, but {name} also quantizes its activations (W8A8)",
                           "use --storage int-quantized (or compressed-tensors, which picks it)")
    if fmt == INT_QUANTIZED:
        _check_w8a8(name, qw)
    if not 1 <= qw.scheme.bits <= 8:
        raise UnicompError(f"{PACK_QUANTIZED} packs 1..8-bit codes, {name} has {qw.scheme.bits}-bit weights", _DENSE_HINT)
    return fmt


def _check_w8a8(name: str, qw: QuantizedWeight) -> None:
    """int-quantized is vLLM's W8A8 int8 path: 8-bit symmetric per-channel weights, int8 per-token activations."""
    s = qw.scheme
    if not qw.activations:
        raise UnicompError(f"int-quantized stores W8A8 (int8 activations), but {name} is weight-only ({_weight_kind(qw)})",
                           "use --storage pack-quantized (or compressed-tensors, which picks it)")
    if s.bits != 8 or not s.symmetric or s.group_size is not None:
        raise UnicompError(f"int-quantized (W8A8) needs 8-bit symmetric per-channel weights; {name} has {_weight_kind(qw)}",
                           f"quantize with bits: 8, symmetric: true, group_size: null, {_DENSE_HINT}")


def _check_grid(name: str, qw: QuantizedWeight) -> None:
    """Refuse a QuantizedWeight whose codes or zero points lie off the grid its scheme declares."""
    s = qw.scheme
    if qw.q.numel() and (int(qw.q.min()) < 0 or int(qw.q.max()) > s.maxq):
        raise UnicompError(f"{name} has codes outside [0, {s.maxq}] for {s.bits} bits", _DENSE_HINT)
    zero = qw.zero.float()
    if not torch.equal(zero, zero.round()) or zero.numel() and (float(zero.min()) < 0 or float(zero.max()) > s.maxq):
        raise UnicompError(f"{name} has zero points that are not integers in [0, {s.maxq}]", _DENSE_HINT)
    if s.symmetric and not torch.all(zero == 2 ** (s.bits - 1)):
        raise UnicompError(f"{name} is marked symmetric but has zero points other than {2 ** (s.bits - 1)}", _DENSE_HINT)


def contiguous_columns(qw: QuantizedWeight, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, zero) with contiguous groups: column c in group c // group_size, as the format requires.

    A g_idx that only relabels aligned contiguous blocks is stored exactly by reordering the
    scale/zero columns; scattered act-order groups (GPTQ without static groups) cannot be.
    """
    s, cols = qw.scheme, qw.q.shape[1]
    if qw.g_idx is None or s.group_size is None:
        return qw.scale, qw.zero
    g_idx = qw.g_idx.to(torch.long).cpu()
    if torch.equal(g_idx, s.default_g_idx(cols)):
        return qw.scale, qw.zero
    blocks = g_idx.reshape(-1, s.group_size)
    labels = blocks[:, 0]
    if not torch.all(blocks == labels[:, None]) or labels.unique().numel() != labels.numel():
        raise UnicompError(
            f"{where} uses act-order groups (g_idx) that are not contiguous; compressed-tensors 0.20 and vLLM "
            "dropped that layout (actorder='group')",
            f"quantize with static groups (gptq static_groups: true, the default), {_DENSE_HINT}")
    return qw.scale[:, labels], qw.zero[:, labels]


def plan_export(model: torch.nn.Module, storage: str) -> list[QuantizedLinear]:
    """Every quantized linear with its format, validated before anything is written."""
    if storage not in STORAGES:
        raise UnicompError(f"unknown compressed-tensors storage {storage!r}", f"use one of {', '.join(STORAGES)}")
    plan = []
    for name, module in _quantized_modules(model):
        qw = quantized_weight_of(module)
        fmt = choose_format(name, qw, storage)
        _check_grid(name, qw)
        contiguous_columns(qw, name)
        plan.append(QuantizedLinear(name, fmt, qw.scheme, qw.activations))
    if not plan:
        raise UnicompError(f"{storage} stores quantized linears, but this model has none (pruned or uncompressed)",
                           "use --storage sparse-bitmask for pruned models, or --storage dense")
    return plan


def has_quantized_linears(model: torch.nn.Module) -> bool:
    return next(_quantized_modules(model), None) is not None


# ----------------------------------------------------------------------------- scheme <-> config


def scheme_args(s: QuantScheme, activations: str | None, fmt: str) -> dict[str, Any]:
    """Keyword arguments of the library's QuantizationScheme for our grid (without targets)."""
    from compressed_tensors.quantization import QuantizationArgs

    strategy = {"strategy": "group", "group_size": s.group_size} if s.group_size else {"strategy": "channel"}
    weights = QuantizationArgs(num_bits=s.bits, type="int", symmetric=s.symmetric, dynamic=False, **strategy)
    args: dict[str, Any] = {"weights": weights, "format": fmt}
    if activations == W8A8_ACTIVATIONS:
        args["input_activations"] = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="token", dynamic=True)
    return args


def build_config(plan: list[QuantizedLinear], ignore: list[str]) -> QuantizationConfig:
    """The library's QuantizationConfig for `plan`: one config group per distinct scheme.

    A single group targets the class "Linear" (as llm-compressor writes it) with the unquantized
    linears in `ignore`; several groups target their modules by name.
    """
    from compressed_tensors.quantization import QuantizationConfig, QuantizationScheme

    groups: list[tuple[dict[str, Any], list[str]]] = []
    for item in plan:
        args = scheme_args(item.scheme, item.activations, item.format)
        for known, names in groups:
            if known == args:
                names.append(item.name)
                break
        else:
            groups.append((args, [item.name]))
    single = len(groups) == 1
    config_groups = {f"group_{i}": QuantizationScheme(targets=["Linear"] if single else names, **args)
                     for i, (args, names) in enumerate(groups)}
    formats = {args["format"] for args, _ in groups}
    return QuantizationConfig(config_groups=config_groups, format=formats.pop() if len(formats) == 1 else "mixed-precision",
                              quantization_status="compressed", ignore=ignore)


def unquantized_linears(model: torch.nn.Module, quantized: set[str]) -> list[str]:
    """Names of nn.Linear modules left in float (e.g. lm_head): the config's `ignore` list."""
    return [name for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name not in quantized]


# ----------------------------------------------------------------------------- tensors


def _scale_for_storage(scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Scales in the model dtype when that is exact (bf16/fp32 always are), else float32."""
    scale = scale.float()
    stored = scale.to(dtype)
    return stored if torch.equal(stored.float(), scale) else scale


def encode(module: torch.nn.Module, item: QuantizedLinear, scale_dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The module's compressed-tensors tensors (local names), packed with the library's helper."""
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
    from compressed_tensors.quantization import QuantizationScheme

    qw = quantized_weight_of(module)
    s = qw.scheme
    offset = 2 ** (s.bits - 1)
    scale, zero = contiguous_columns(qw, item.name)
    codes = (qw.q.to(torch.int32) - offset).to(torch.int8).cpu()
    out: dict[str, torch.Tensor] = {"weight_scale": _scale_for_storage(scale.cpu(), scale_dtype)}
    if item.format == PACK_QUANTIZED:
        out["weight_packed"] = pack_to_int32(codes, s.bits)
        out["weight_shape"] = torch.tensor(tuple(codes.shape))
    else:
        out["weight"] = codes
    if not s.symmetric:
        zp = (zero.cpu().round().to(torch.int32) - offset).to(torch.int8)
        out["weight_zero_point"] = pack_to_int32(zp, s.bits, packed_dim=0) if item.format == PACK_QUANTIZED else zp
    scheme = QuantizationScheme(targets=["Linear"], **scheme_args(s, qw.activations, item.format))
    expected = set(BaseCompressor.get_value_from_registry(item.format).compression_param_names(scheme))
    assert set(out) == expected, f"layout drifted from compressed-tensors: {sorted(out)} vs {sorted(expected)}"
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor):
        out["bias"] = bias.detach().cpu().clone()
    return {k: v.contiguous() for k, v in out.items()}


def _codes_to_q(codes: torch.Tensor, bits: int) -> torch.Tensor:
    return codes.to(torch.int32) + 2 ** (bits - 1)


def _per_row(t: torch.Tensor, rows: int) -> torch.Tensor:
    """[rows, groups] view of a scale/zero tensor; a per-tensor value is repeated on every row."""
    return t.reshape(1, 1).expand(rows, 1).clone() if t.numel() == 1 and rows != 1 else t.reshape(rows, -1)


def decode(tensors: dict[str, torch.Tensor], scheme: QuantizationScheme, fmt: str, where: str) -> QuantizedWeight:
    """A QuantizedWeight (our unsigned grid) from one module's compressed-tensors tensors (local names)."""
    from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32

    args = scheme.weights
    bits = args.num_bits
    if "weight_packed" in tensors:
        shape = torch.Size(int(v) for v in tensors["weight_shape"].tolist())
        codes = unpack_from_int32(tensors["weight_packed"], bits, shape)
    elif "weight" in tensors and tensors["weight"].dtype == torch.int8:
        codes = tensors["weight"]
    else:
        raise UnicompError(f"{where} has no quantized weight in its {fmt} checkpoint", "re-export the folder")
    rows, cols = codes.shape
    scale = _per_row(tensors["weight_scale"].float(), rows)
    if args.symmetric:
        zero = torch.full_like(scale, float(2 ** (bits - 1)))
    else:
        zp = tensors["weight_zero_point"]
        if zp.dtype == torch.int32 and args.strategy in ("group", "channel"):  # pack-quantized packs zero points
            zp = unpack_from_int32(zp, bits, torch.Size((rows, scale.shape[1])), packed_dim=0)
        zero = _per_row(zp.float(), rows) + 2 ** (bits - 1)
    group_size = args.group_size if args.strategy == "group" else None
    ours = QuantScheme(bits=bits, symmetric=args.symmetric, group_size=group_size)
    if ours.groups(cols, where) != scale.shape[1]:
        raise UnicompError(f"{where}: {scale.shape[1]} scale columns do not match {cols} inputs in groups of {group_size}",
                           "the checkpoint is inconsistent with its quantization_config")
    g_idx = tensors.get("weight_g_idx")
    activations = W8A8_ACTIVATIONS if scheme.input_activations is not None else None
    return QuantizedWeight(q=_codes_to_q(codes, bits), scale=scale, zero=zero, scheme=ours,
                           g_idx=None if g_idx is None else g_idx.to(torch.long), activations=activations)


# ----------------------------------------------------------------------------- writing a folder


def _owner(key: str, modules: set[str] | dict[str, Any]) -> str | None:
    """The quantized module a checkpoint key belongs to (its longest dotted prefix among `modules`)."""
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:i])
        if prefix in modules:
            return prefix
    return None


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None and embeddings.weight.is_floating_point():
        return embeddings.weight.dtype
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _rewrite_shards(folder: Path, encoded: dict[str, dict[str, torch.Tensor]]) -> None:
    """Replace each quantized module's saved tensors by its compressed ones, in whichever shard held them.

    The dense weights of quantized modules are never read back (safe_open reads lazily)."""
    from safetensors import safe_open

    placed: set[str] = set()
    weight_map: dict[str, str] = {}
    for file in sorted(folder.glob("*.safetensors")):
        out: dict[str, torch.Tensor] = {}
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():
                module = _owner(key, encoded)
                if module is None:
                    out[key] = handle.get_tensor(key)
                elif module not in placed:
                    out.update({f"{module}.{k}": v for k, v in encoded[module].items()})
                    placed.add(module)
        save_file(out, str(file), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(out, file.name))
    if placed != set(encoded):
        raise RuntimeError(f"save_pretrained wrote no tensors for {sorted(set(encoded) - placed)[:3]}")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        data = json.loads(index.read_text())
        data["weight_map"] = dict(sorted(weight_map.items()))
        data.setdefault("metadata", {})["total_size"] = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
        index.write_text(json.dumps(data, indent=2))


def write_compressed_tensors(model: torch.nn.Module, folder: str | Path, plan: list[QuantizedLinear]) -> dict[str, Any]:
    """Turn a `save_pretrained` folder of `model` into its compressed-tensors form; returns the config written."""
    from compressed_tensors.compressors import ModelCompressor

    folder = Path(folder)
    dtype = _model_dtype(model)
    _rewrite_shards(folder, {item.name: encode(model.get_submodule(item.name), item, dtype) for item in plan})
    config = build_config(plan, unquantized_linears(model, {item.name for item in plan}))
    ModelCompressor(quantization_config=config).update_config(str(folder))
    return json.loads((folder / "config.json").read_text())["quantization_config"]


# ----------------------------------------------------------------------------- reading a folder


def _raw_quant_config(folder: Path) -> dict[str, Any] | None:
    from unicomp.compress.quant.checkpoint_config import quant_config

    return quant_config(folder, "compressed-tensors")


def parse_config(raw: dict[str, Any]) -> QuantizationConfig:
    """The library's QuantizationConfig of a folder; legacy act-order groups (g_idx) parse as plain groups,
    their `weight_g_idx` tensors are still applied when the weights are decoded."""
    from compressed_tensors.quantization import QuantizationConfig

    raw = json.loads(json.dumps(raw))
    for group in (raw.get("config_groups") or {}).values():
        weights = group.get("weights") if isinstance(group, dict) else None
        if isinstance(weights, dict) and weights.get("actorder") in _LEGACY_ACTORDER:
            weights.pop("actorder")
    return QuantizationConfig.model_validate(raw)


def _readable_scheme(scheme: QuantizationScheme) -> bool:
    """Schemes whose tensors map onto our grid: int weights per group/channel/tensor, optional W8A8 activations."""
    w, a = scheme.weights, scheme.input_activations
    weights_ok = (w is not None and w.type == "int" and w.num_bits in SUPPORTED_BITS
                  and w.strategy in ("group", "channel", "tensor") and not w.dynamic)
    acts_ok = a is None or (a.type == "int" and a.num_bits == 8 and a.strategy == "token" and a.dynamic is True
                            and a.symmetric)
    return weights_ok and acts_ok and scheme.output_activations is None


def readable_config(folder: Path) -> QuantizationConfig | None:
    """The folder's config when unicomp can load it onto its own grid; None for anything else (fp8, sparse, ...)."""
    raw = _raw_quant_config(folder)
    if raw is None or raw.get("format") not in READABLE_FORMATS or not raw.get("config_groups"):
        return None
    try:
        config = parse_config(raw)
    except ValueError:
        return None
    if config.kv_cache_scheme is not None or not all(_readable_scheme(s) for s in config.config_groups.values()):
        return None
    return config


def is_quantized_folder(folder: Path) -> bool:
    return readable_config(folder) is not None


def _assign_schemes(model: torch.nn.Module, config: QuantizationConfig) -> dict[str, QuantizationScheme]:
    from compressed_tensors.utils.match import match_named_modules

    assigned: dict[str, QuantizationScheme] = {}
    for scheme in config.config_groups.values():
        for name, module in match_named_modules(model, scheme.targets, config.ignore):
            if isinstance(module, torch.nn.Linear):
                assigned.setdefault(name, scheme)
    return assigned


def read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a folder's safetensors files (the shards its index names, when it has one)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted({folder / f for f in json.loads(index.read_text())["weight_map"].values()})
    else:
        files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise UnicompError(f"no *.safetensors weights in {folder}",
                           "use a safetensors release of the checkpoint (pickled .bin weights are never loaded)")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(file))
    return state


def _split_state(state: dict[str, torch.Tensor],
                 modules: dict[str, Any]) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """(per quantized module: its tensors by local name minus bias, every other tensor by full name)."""
    parts: dict[str, dict[str, torch.Tensor]] = {name: {} for name in modules}
    rest: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        owner = _owner(key, modules)
        local = key[len(owner) + 1:] if owner else None
        if owner is None or local == "bias":
            rest[key] = tensor
        else:
            parts[owner][local] = tensor
    return parts, rest


def load_quantized(folder: str | Path, dtype: torch.dtype | None = None, *, pack: bool = True,
                   execution: str = "auto") -> torch.nn.Module:
    """A transformers model from a compressed-tensors folder whose quantized linears carry QuantizedWeight.

    Linears hold the dequantized (fake-quant) weights; with `pack`, `execution` then decides how
    they run (packed kernels, or the float reference in fp32; see packed.prepare_execution).
    """
    folder = Path(folder)
    config = readable_config(folder)
    if config is None:
        raise UnicompError(f"{folder} is not a compressed-tensors int-quantized checkpoint unicomp can read",
                           "load it with transformers directly")
    model, hf_config = empty_model(folder, dtype)
    schemes = _assign_schemes(model, config)
    parts, rest = _split_state(read_tensors(folder), schemes)
    decoded = {name: decode(parts[name], scheme, scheme.format or config.format, name)
               for name, scheme in schemes.items()}
    return finish_quantized(model, hf_config, decoded, rest, pack=pack, execution=execution)


def empty_model(folder: Path, dtype: torch.dtype | None = None) -> tuple[torch.nn.Module, Any]:
    """The folder's architecture with uninitialised weights, its quantization_config dropped (unicomp
    attaches the quantized linears itself); every weight must then come from the checkpoint."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    hf_config = AutoConfig.from_pretrained(str(folder))
    if hasattr(hf_config, "quantization_config"):
        delattr(hf_config, "quantization_config")
    with no_init_weights():  # _load_rest refuses any parameter left out
        model = AutoModelForCausalLM.from_config(hf_config, dtype=dtype or _config_dtype(hf_config))
    return model, hf_config


def finish_quantized(model: torch.nn.Module, hf_config: Any, decoded: dict[str, QuantizedWeight],
                     rest: dict[str, torch.Tensor], *, pack: bool, execution: str) -> torch.nn.Module:
    """Attach each decoded QuantizedWeight, load every other tensor, and pick the execution path:
    the end of every quantized-folder loader (compressed-tensors, GPTQ, AWQ)."""
    for name, qw in decoded.items():
        attach(model.get_submodule(name), qw)
    expected = set(model.state_dict())
    for key in [k for k in rest if k not in expected]:
        # what older packers saved and today's models do not hold: rotary buffers, all-zero biases
        if key.endswith("rotary_emb.inv_freq") or (key.endswith(".bias") and not bool(rest[key].any())):
            del rest[key]
    _load_rest(model, rest, set(decoded), getattr(hf_config, "tie_word_embeddings", False))
    model.eval()
    return _prepare(model, execution) if pack else model


def _config_dtype(hf_config: Any) -> torch.dtype:
    dtype = getattr(hf_config, "dtype", None)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype.removeprefix("torch."), None)
    return dtype if isinstance(dtype, torch.dtype) else torch.float32


def _load_rest(model: torch.nn.Module, rest: dict[str, torch.Tensor], quantized: set[str], tied: bool) -> None:
    missing, unexpected = model.load_state_dict(rest, strict=False)
    expected = {f"{name}.weight" for name in quantized}
    tied_missing = {k for k in missing if tied and k.endswith("lm_head.weight")}
    left = set(missing) - expected - tied_missing
    if left or unexpected:
        raise UnicompError(f"checkpoint does not match its config: missing {sorted(left)[:3]}, "
                           f"unexpected {sorted(unexpected)[:3]}",
                           "the folder's tensors and config.json come from different models")
    if tied_missing:
        model.tie_weights()


def _prepare(model: torch.nn.Module, execution: str) -> torch.nn.Module:
    """Packed kernels or the exact float reference, as `packed.prepare_execution` decides."""
    from unicomp.compress.quant.packed import prepare_execution

    model.unicomp_execution = prepare_execution(model, execution)  # type: ignore[attr-defined]
    return model
