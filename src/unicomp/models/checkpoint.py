"""Check a transformers checkpoint and load it: the one place that calls from_pretrained.

Every source (local folder, hub repo, hub cache snapshot, converted GGUF) ends here, so dtype,
device, safetensors-only and trust_remote_code rules are applied the same way everywhere.
Pickle checkpoints (`.bin`, `.pt`) are refused because unpickling runs arbitrary code.
Folders unicomp wrote in compressed-tensors layouts (sparse-bitmask, pack-/int-quantized) are
read by unicomp's own loaders (config.json + safetensors only); other compressed-tensors
schemes (e.g. fp8) go through transformers, which decompresses them.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from unicomp.errors import NotFoundError, UnicompError
from unicomp.models.options import torch_dtype

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def check_weight_files(files: list[str], where: str) -> None:
    """Raise a one-line error unless `files` (names in a checkpoint) hold a config and
    safetensors weights."""
    names = [Path(f).name for f in files]
    if "config.json" not in names:
        ggufs = [n for n in names if n.endswith(".gguf")]
        fix = (
            f"pass the .gguf file itself, e.g. {where}/{ggufs[0]}" if ggufs
            else "point at the folder that holds config.json and *.safetensors "
            "(a save_pretrained output)"
        )
        raise NotFoundError(f"{where} has no config.json, so it is not a transformers model", fix)
    if any(n.endswith(".safetensors") for n in names):
        return
    pickles = sorted(n for n in names if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise UnicompError(
            f"{where} only has pickle weights ({', '.join(pickles[:3])}); unicomp loads "
            "safetensors only, because unpickling can run arbitrary code",
            "convert once where you trust the file: AutoModelForCausalLM.from_pretrained(path)"
            ".save_pretrained(new_dir), then use new_dir",
        )
    raise NotFoundError(f"{where} has config.json but no *.safetensors weights",
                        "save the model with save_pretrained into this folder")


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise NotFoundError(f"{path} is not a directory", "pass a model folder or a .gguf file")
    check_weight_files([p.name for p in path.iterdir() if p.is_file()], str(path))
    check_safetensors_files(path)


_CORRUPT_FIX = "re-copy or re-download the checkpoint, or re-create it (e.g. run `unicomp compress` again)"


def check_safetensors_files(folder: Path) -> None:
    """Every weight file is whole: its header parses and its tensors end inside the file. A copy
    cut short (full disk, killed transfer) is named here, not met as a deserialisation error."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text())["weight_map"].values())
        except (ValueError, KeyError, TypeError) as exc:
            raise UnicompError(f"{index} is not a valid shard index ({first_line(exc)})", _CORRUPT_FIX) from None
        missing = sorted(s for s in shards if not (folder / s).is_file())
        if missing:
            raise UnicompError(f"{folder} is missing weight file(s) {', '.join(missing[:3])} listed in {index.name}",
                               _CORRUPT_FIX)
    for file in sorted(folder.glob("*.safetensors")):
        problem = _safetensors_problem(file)
        if problem:
            raise UnicompError(f"{file} is truncated or corrupt: {problem}", _CORRUPT_FIX)


def _safetensors_problem(file: Path) -> str | None:
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than the 8-byte header length"
        header_len = struct.unpack("<Q", head)[0]
        if 8 + header_len > size:
            return f"its header needs {header_len} bytes but the file has {size - 8} after the length"
        try:
            header = json.loads(fh.read(header_len))
        except ValueError as exc:
            return f"its header is not valid JSON ({exc})"
    if not isinstance(header, dict):
        return "its header is not a JSON object"
    ends = [v["data_offsets"][1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and isinstance(v.get("data_offsets"), list)
            and len(v["data_offsets"]) == 2]
    needed = 8 + header_len + max(ends, default=0)
    if needed > size:
        return f"its tensors need {needed} bytes but the file has {size}"
    return None


def load_checkpoint(
    where: str | Path,
    *,
    dtype: str,
    device: str,
    trust_remote_code: bool,
    revision: str | None = None,
    local_files_only: bool = False,
) -> tuple[Any, Any]:
    """(model in eval mode on `device`, tokenizer) from a folder or hub repo id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    common = dict(revision=revision, trust_remote_code=trust_remote_code,
                  local_files_only=local_files_only)
    try:
        from unicomp.compress.storage import loader_for

        folder = Path(str(where))
        if not folder.is_dir():  # a hub repo in a format unicomp reads itself (public GPTQ / AWQ releases)
            folder = _foreign_snapshot(str(where), revision, local_files_only) or folder
        loader = loader_for(folder) if folder.is_dir() else None  # unicomp's compressed storages
        if loader is not None:
            model = loader(folder, torch_dtype(dtype))
        else:
            model = AutoModelForCausalLM.from_pretrained(
                str(where), use_safetensors=True, dtype=torch_dtype(dtype), **common
            )
    except (ValueError, KeyError) as exc:
        raise _load_error("model", where, exc, trust_remote_code) from exc
    except Exception as exc:
        from safetensors import SafetensorError

        if not isinstance(exc, SafetensorError):
            raise
        raise UnicompError(f"cannot read the weights in {where}: {first_line(exc)}", _CORRUPT_FIX) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(where), **common)
    except (ValueError, KeyError, OSError, TypeError) as exc:
        if isinstance(exc, OSError) and not local_files_only:
            raise  # a failed download: the caller may fall back to another source
        raise UnicompError(
            f"no usable tokenizer in {where}: {first_line(exc)}",
            "save the tokenizer next to the weights with tokenizer.save_pretrained(dir)",
        ) from exc
    model.to(device)
    model.eval()
    return model, tokenizer


FOREIGN_QUANT_METHODS = ("gptq", "awq")


def _foreign_snapshot(repo_id: str, revision: str | None, local_files_only: bool) -> Path | None:
    """The local snapshot of a hub repo whose config says GPTQ or AWQ (downloaded if needed), so it
    loads through unicomp's readers on any device instead of CUDA-only kernel packages; None otherwise."""
    import json

    from huggingface_hub import hf_hub_download, snapshot_download

    config = hf_hub_download(repo_id, "config.json", revision=revision, local_files_only=local_files_only)
    raw = json.loads(Path(config).read_text()).get("quantization_config") or {}
    if str(raw.get("quant_method", "")).lower() not in FOREIGN_QUANT_METHODS:
        return None
    return Path(snapshot_download(repo_id, revision=revision, local_files_only=local_files_only,
                                  allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]))


def _load_error(what: str, where: str | Path, exc: Exception, trust: bool) -> UnicompError:
    text = first_line(exc)
    if "trust_remote_code" in text and not trust:
        return UnicompError(f"{where} needs its own Python code to load",
                            "pass trust_remote_code=True (--trust-remote-code) if you trust it")
    return UnicompError(f"transformers cannot load the {what} in {where}: {text}",
                        "check that it is a causal language model supported by this "
                        "transformers version")


def first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
