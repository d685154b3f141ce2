"""Convert a GGUF file once into an ordinary safetensors model folder in the cache.

Loading a GGUF makes transformers dequantize every tensor (~14 s for SmolLM2-135M here), and
transformers 5.x marks the result as quantized and refuses save_pretrained. So we rebuild a
plain model from the config, copy the dequantized state dict in, and save it with its
tokenizer and generation config; later loads read safetensors in a fraction of a second.
The folder is written under a temporary name and renamed at the end, so an interrupted
conversion never leaves a folder that looks complete. Before the rename the result is checked
against the GGUF model (identical logits, identical token ids).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from unicomp.errors import UnicompError
from unicomp.outputs import clean_leftovers, new_temp_folder

PROVENANCE = "unicomp-conversion.json"
FORMAT = 1  # bump when the conversion changes, so older cached folders are not reused
_CHECK_TEXT = "The capital of France is Paris. 1 + 1 = 2."


def is_complete(folder: Path) -> bool:
    """A finished conversion: provenance written last, current format, weights present."""
    try:
        meta = json.loads((folder / PROVENANCE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("format") == FORMAT and any(folder.glob("*.safetensors"))


def read_provenance(folder: Path) -> dict:
    return json.loads((folder / PROVENANCE).read_text())


def convert_gguf(gguf: Path, dest: Path, provenance: dict) -> Path:
    """Make `dest` a safetensors copy of the model in `gguf` (no-op if already complete)."""
    if is_complete(dest):
        return dest
    clean_leftovers(dest.parent)  # scratch folders of conversions whose process was killed
    work = new_temp_folder(dest.parent, dest.name)
    try:
        _convert_into(gguf, work, provenance)
        _apply_umask(work)
        if dest.exists() and not is_complete(dest):
            shutil.rmtree(dest)  # a leftover that is not ours to trust
        try:
            os.rename(work, dest)
        except OSError:
            if not is_complete(dest):  # another process finishing first is fine
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest


def _convert_into(gguf: Path, work: Path, provenance: dict) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        quantized = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    except Exception as exc:  # any failure to parse a user's file is a problem with that file
        line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        line = f"{type(exc).__name__}: {line}"
        raise UnicompError(f"transformers cannot read the GGUF file {gguf}: {line}",
                           "use a GGUF of an architecture transformers supports "
                           "(llama, qwen2, gemma3, ...)") from exc
    quantized.eval()
    plain = _plain_copy(quantized)
    plain.save_pretrained(str(work))
    tokenizer.save_pretrained(str(work))
    _verify(quantized, tokenizer, work)
    meta = dict(provenance, format=FORMAT, architecture=type(plain).__name__,
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                **_versions())
    (work / PROVENANCE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def _plain_copy(quantized: Any) -> Any:
    """The same weights in a model that transformers does not consider quantized."""
    config = copy.deepcopy(quantized.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(quantized).__name__]
    plain = type(quantized)(config).to(torch.float32)
    plain.load_state_dict(quantized.state_dict(), strict=True)
    plain.generation_config = copy.deepcopy(quantized.generation_config)
    return plain.eval()


def _verify(quantized: Any, tokenizer: Any, work: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    saved_tok = AutoTokenizer.from_pretrained(str(work))
    ids = tokenizer(_CHECK_TEXT, return_tensors="pt")["input_ids"]
    if saved_tok(_CHECK_TEXT, return_tensors="pt")["input_ids"].tolist() != ids.tolist():
        raise RuntimeError("converted tokenizer encodes differently from the GGUF tokenizer")
    saved = AutoModelForCausalLM.from_pretrained(str(work), use_safetensors=True,
                                                 dtype=torch.float32).eval()
    with torch.no_grad():
        diff = (saved(ids).logits - quantized(ids).logits).abs().max().item()
    if diff != 0.0:
        raise RuntimeError(f"converted model differs from the GGUF model (max |dlogit| {diff})")


def _apply_umask(folder: Path) -> None:
    """mkdtemp (and safetensors) create owner-only files; give the finished folder the
    permissions a normal mkdir would, so a shared UNICOMP_CACHE stays readable."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.iterdir():
        os.chmod(path, 0o666 & ~umask)


def _versions() -> dict:
    import transformers

    return {"transformers_version": transformers.__version__, "torch_version": torch.__version__}
