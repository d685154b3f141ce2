"""What a loaded model occupies and computes: parameters, non-zeros, the decoder linears' resident
bytes and effective bits per weight, and FLOPs / MACs per generated token (efficiency/flops.py).

Parameters count logical weights (a packed int4 matrix counts out x in, not its bytes); non-zeros
count exact zeros in dense weights only (a packed matrix counts as dense). Effective bits per
weight = resident bytes of the decoder linears (codes, scales, zero points, bias) x 8 / their
logical weights: 16 for bf16, about 4.5 for int4 with a 16-bit scale per 64 weights.
"""

from __future__ import annotations

from typing import Any

import torch


def footprint(model: torch.nn.Module, context: int = 1024) -> dict[str, Any]:
    from unicomp.compress.quant.packed import PackedLinear, linear_weight_bytes
    from unicomp.efficiency.flops import per_token
    from unicomp.models.anatomy import decoder_layers

    params = nonzeros = 0
    seen: set[int] = set()
    for p in model.parameters():
        if p.data_ptr() in seen:  # tied weights count once
            continue
        seen.add(p.data_ptr())
        params += p.numel()
        nonzeros += int(torch.count_nonzero(p))
    linear_params = 0
    for module in decoder_layers(model).modules():
        if isinstance(module, PackedLinear):
            logical = module.in_features * module.out_features
            params += logical  # packed codes are buffers, not parameters
            nonzeros += logical
            linear_params += logical
        elif isinstance(module, torch.nn.Linear):
            linear_params += module.weight.numel()
    resident = linear_weight_bytes(model)
    cost = per_token(model.config, context)
    return {"parameters": params, "nonzeros": nonzeros, "density": nonzeros / params if params else None,
            "decoder_linear_weights": linear_params, "decoder_linear_bytes": resident,
            "bits_per_weight": 8 * resident / linear_params if linear_params else None,
            "flops_per_token": cost["flops"], "macs_per_token": cost["macs"], "flops_context": context}
