"""A Keras-style model summary: layers, output shapes, trainable and frozen parameters, multiply-accumulates.

One example goes through the model in eval mode. Forward hooks record each module's output shape;
torch's ``FlopCounterMode`` counts the multiply-accumulates (MACs) of the matrix products it sees:
Linear (``addmm``/``mm``), Conv (``convolution``), and batched products (``bmm``, ``baddbmm``,
``scaled_dot_product_attention``), which covers attention's QKᵀ and AV. Element-wise work (activations,
normalisation, softmax, pooling, residual sums) and embedding lookups are not counted: they are
memory-bound and small next to the products.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LayerRow:
    """One line of the table: a module that holds parameters, is a leaf, or does products of its own."""

    name: str  # qualified name, e.g. "features.0"; "(model)" for the model's own parameters
    kind: str  # the module's class
    output_shape: str  # of the first call, for one example; "-" if the example never reached it
    trainable: int
    frozen: int
    macs: int  # this module's own products, not its children's


@dataclass
class ModelSummary:
    rows: list[LayerRow]
    input_shape: tuple[int, ...]
    macs: int  # the whole model, one example
    trainable: int = field(init=False)
    frozen: int = field(init=False)

    def __post_init__(self):
        self.trainable = sum(r.trainable for r in self.rows)
        self.frozen = sum(r.frozen for r in self.rows)

    @property
    def parameters(self) -> int:
        return self.trainable + self.frozen

    def table(self) -> str:
        """The summary as a fixed-width text table with totals underneath."""
        header = ("Layer (type)", "Output shape", "Trainable", "Frozen", "MACs")
        cells = [header] + [(f"{r.name} ({r.kind})", r.output_shape, f"{r.trainable:,}", f"{r.frozen:,}",
                             f"{r.macs:,}") for r in self.rows]
        widths = [max(len(c[i]) for c in cells) for i in range(len(header))]

        def line(c) -> str:
            return "  ".join(c[i].ljust(widths[i]) if i < 2 else c[i].rjust(widths[i]) for i in range(len(c)))

        rule = "=" * len(line(header))
        body = [line(c) for c in cells[1:]]
        totals = [f"Input shape: {self.input_shape}",
                  f"Parameters: {self.parameters:,} (trainable {self.trainable:,}, frozen {self.frozen:,})",
                  f"MACs for one example: {self.macs:,} ({_si(self.macs)}; Linear, Conv and matrix products "
                  f"incl. attention)"]
        return "\n".join([line(header), rule, *body, rule, *totals])


def summarize(model: nn.Module, example: torch.Tensor) -> ModelSummary:
    """Summarise `model` on `example`, a batch of one, without changing the model.

    Args:
        model: any module; its parameters' ``requires_grad`` says trainable or frozen.
        example: one input, with its batch dimension of 1, on the model's device.

    Returns:
        The rows in module order; each parameter is counted once (a shared one at its first owner).
    """
    shapes, handles = {}, []
    for name, module in model.named_modules():
        handles.append(module.register_forward_hook(_shape_hook(shapes, name)))
    try:
        flops = _flops(model, example)
    finally:
        for h in handles:
            h.remove()
    inclusive = _inclusive_macs(model, flops)
    seen: set[int] = set()
    rows = []
    for name, module in model.named_modules():
        own = [p for p in module.parameters(recurse=False) if id(p) not in seen]
        seen.update(id(p) for p in own)
        children = [_child(name, c) for c, _ in module.named_children()]
        macs = inclusive[name] - sum(inclusive[c] for c in children)
        if own or macs or (name and not children):
            rows.append(LayerRow(name or "(model)", type(module).__name__, shapes.get(name, "-"),
                                 sum(p.numel() for p in own if p.requires_grad),
                                 sum(p.numel() for p in own if not p.requires_grad), macs))
    return ModelSummary(rows, tuple(example.shape), inclusive[""])


def _child(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


def _inclusive_macs(model: nn.Module, flops: dict[str, int]) -> dict[str, int]:
    """MACs per module name, children included; a container never called itself (a ModuleList) sums its children."""
    root = type(model).__name__
    out: dict[str, int] = {}
    for name, module in reversed(list(model.named_modules())):  # children before their parents
        counted = flops.get(f"{root}.{name}" if name else root)
        out[name] = counted // 2 if counted is not None else sum(
            out[_child(name, c)] for c, _ in module.named_children())
    return out


def _flops(model: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """FLOPs of one forward pass per module name (``Root.sub.name``), each including its children's."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False, depth=None, custom_mapping=_CPU_ATTENTION) as counter:
            model(example)
    finally:
        model.train(was)
    return {name: sum(ops.values()) for name, ops in counter.get_flop_counts().items()}


def _sdpa_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)  # a causal mask still counts the full T x T


# torch counts the CUDA kernels of scaled_dot_product_attention but not the one it picks on a CPU.
_CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops}


def _shape_hook(shapes: dict[str, str], name: str):
    def hook(module, inputs, output):
        if name not in shapes:
            shapes[name] = _shape_of(output)
    return hook


def _shape_of(output) -> str:
    if isinstance(output, torch.Tensor):
        return str(tuple(output.shape))
    if isinstance(output, (tuple, list)) and output:
        return _shape_of(output[0])
    logits = getattr(output, "logits", None) if not isinstance(output, dict) else output.get("logits")
    return _shape_of(logits) if logits is not None else type(output).__name__


def _si(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)
