"""One table for every export variant of a run: file size, latency at batch 1 and 32, accuracy.

Variants are built in memory and never written, so comparing leaves the run directory untouched.
A variant that cannot be built for this model (e.g. channel pruning of a one-layer model) gets a
row that says why instead of stopping the comparison. A variant that loses more than
``MAX_METRIC_LOSS`` of the eager model's metric (5 points of accuracy) says so in its note.
"""

from __future__ import annotations

import gzip
import importlib.util
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as safetensors_bytes

from ..compute.threads import torch_threads
from ..errors import UserError
from ..runload.load import load_run, read_run_config
from .build import Bounds, ExportContext, ExportOptions, build_export
from .inputs import eval_split, load_data
from .onnx_export import DEFAULT_OPSET
from .parity import outputs
from .prune import sparsity
from .runtime import Runner, torch_runner

BATCH_SIZES = (1, 32)
RUNTIMES = {"onnx": "onnxruntime", "torchscript": "pytorch (torchscript)", "tflite": "litert (batches of one)"}
MAX_METRIC_LOSS = 0.05  # 5 points of accuracy (or 0.05 of R^2): beyond this a variant is not a drop-in


@dataclass
class VariantRow:
    """One line of the comparison table; latencies in milliseconds, sizes in bytes."""

    variant: str
    runtime: str
    bytes: int | None = None
    gzip_bytes: int | None = None
    p50_b1: float | None = None
    p95_b1: float | None = None
    p50_b32: float | None = None
    p95_b32: float | None = None
    metric: float | None = None  # accuracy (classification) or R^2 (regression) on the test split
    sparsity: float | None = None
    note: str = ""


@dataclass
class Comparison:
    run: str
    metric_name: str
    threads: int
    rows: list[VariantRow]

    def to_dict(self) -> dict:
        return {"run": self.run, "metric": self.metric_name, "threads": self.threads,
                "rows": [asdict(r) for r in self.rows]}


def default_variants(amount: float = 0.5, finetune_epochs: int = 0, opset: int = DEFAULT_OPSET) -> list[ExportOptions]:
    """fp32 in each format, int8 dynamic and static with each quantizer, both pruning methods; TFLite
    (float32) too when the ``tflite`` extra is installed."""
    prune = dict(amount=amount, finetune_epochs=finetune_epochs)
    tflite = [ExportOptions("tflite")] if importlib.util.find_spec("litert_torch") is not None else []
    return [
        ExportOptions("torchscript"),
        ExportOptions("onnx", opset),
        *tflite,
        ExportOptions("torchscript", int8="dynamic"),
        ExportOptions("onnx", opset, int8="dynamic"),
        ExportOptions("torchscript", int8="static"),
        ExportOptions("onnx", opset, int8="static"),
        ExportOptions("onnx", opset, prune="global", **prune),
        ExportOptions("onnx", opset, prune="channel", **prune),
    ]


def latency_ms(run: Runner, x: np.ndarray, iters: int) -> tuple[float, float]:
    """p50 and p95 wall time of ``run(x)`` over ``iters`` calls, after a short warm-up."""
    for _ in range(min(10, iters)):
        run(x)
    times = np.empty(iters)
    for i in range(iters):
        t0 = time.perf_counter()
        run(x)
        times[i] = time.perf_counter() - t0
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


def _metric(run: Runner, x: np.ndarray, y: np.ndarray, classification: bool) -> float | None:
    out = outputs(run, x)
    if classification:  # classes, or next tokens of a language model: (N, C) vs (N,), (N, T, V) vs (N, T)
        return float((out.argmax(-1) == y).mean()) if out.shape[:-1] == y.shape else None
    pred = out.reshape(-1)
    return float(1.0 - ((pred - y) ** 2).mean() / max(float(y.var()), 1e-12))


def loss_note(metric: float | None, base: float | None, metric_name: str, options: ExportOptions) -> str:
    """The note of a variant whose metric falls more than ``MAX_METRIC_LOSS`` below the eager model's, else ""."""
    if metric is None or base is None or base - metric <= MAX_METRIC_LOSS:
        return ""
    note = (f"loses {(base - metric) * 100:.1f} points of {metric_name} ({metric:.4f} vs {base:.4f}; "
            f"more than {MAX_METRIC_LOSS * 100:.0f} points)")
    if options.prune is not None:
        note += "; fine-tune after pruning (--finetune-epochs) or prune less (--amount)"
    return note


def _batch(x: np.ndarray, n: int) -> np.ndarray:
    reps = -(-n // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:n])


def _unshared(state: dict) -> dict:
    """A state dict with tied weights (a GPT's embedding and output layer) kept once, as a file stores them."""
    seen, out = set(), {}
    for k, v in state.items():
        ptr = v.untyped_storage().data_ptr()
        if ptr not in seen:
            seen.add(ptr)
            out[k] = v.contiguous()
    return out


def compare_run(run_dir: str | Path, variants: list[ExportOptions] | None = None, *, iters: int = 100,
                threads: int | None = None, checkpoint: str = "best", bounds: Bounds | None = None) -> Comparison:
    """Build every variant of a run's model and measure it side by side in this process.

    Args:
        run_dir: the run directory.
        variants: what to build (default: ``default_variants()``).
        iters: timed calls per batch size and variant.
        threads: CPU threads for both PyTorch and onnxruntime (default: PyTorch's current setting).
        checkpoint: "best" or "last".
        bounds: parity bounds each variant must meet to be measured.

    Returns:
        The rows, the first being the PyTorch eager model every variant was exported from. A run of a
        transformers causal LM gets `lm_compare`'s table instead (its Hugging Face directory and GGUF files).
    """
    if iters < 1:
        raise UserError(f"iters must be at least 1, got {iters}")
    if read_run_config(run_dir).model.name == "hf_lm":
        from .lm_compare import compare_causal_lm

        return compare_causal_lm(run_dir, threads=threads, checkpoint=checkpoint)
    use_threads = torch_threads(threads)  # validated before any work
    run = load_run(run_dir, checkpoint)
    data = load_data(run)
    ctx = ExportContext.create(run, data)
    variants = default_variants() if variants is None else variants
    for v in variants:
        v.validate()
    with use_threads:
        threads = torch.get_num_threads()
        x_eval, y_eval = eval_split(data) or (None, None)
        metric = "accuracy" if ctx.by_class else "r2"
        x_bench = {b: _batch(ctx.x, b) for b in BATCH_SIZES}

        def measure(row: VariantRow, runner: Runner) -> VariantRow:
            row.p50_b1, row.p95_b1 = latency_ms(runner, x_bench[1], iters)
            row.p50_b32, row.p95_b32 = latency_ms(runner, x_bench[32], iters)
            if x_eval is not None:
                row.metric = _metric(runner, x_eval, y_eval, ctx.by_class)
            return row

        eager = safetensors_bytes(_unshared(ctx.model.state_dict()))
        rows = [measure(VariantRow("pytorch fp32 (eager)", "pytorch", len(eager), len(gzip.compress(eager)),
                                   sparsity=sparsity(ctx.model)), torch_runner(ctx.model, ctx.signature))]
        for v in variants:
            runtime = RUNTIMES[v.format]
            row = VariantRow(v.label, runtime)
            try:
                built = build_export(ctx, v, bounds, threads=threads)
            except UserError as e:
                row.note = str(e)
                rows.append(row)
                continue
            row.bytes, row.gzip_bytes = len(built.data), len(gzip.compress(built.data))
            row.sparsity = built.info["sparsity"]
            rows.append(measure(row, built.runner))
            row.note = loss_note(row.metric, rows[0].metric, metric, v)
    return Comparison(str(run_dir), metric if x_eval is not None else "n/a (data unavailable)", threads, rows)


def print_comparison(c: Comparison) -> None:
    """Print the comparison as one table (latencies as p50/p95 in ms)."""
    from rich.table import Table

    from .lm_compare import LMComparison, print_lm_comparison

    if isinstance(c, LMComparison):
        return print_lm_comparison(c)

    from ..terminal.console import console

    base = c.rows[0]
    metric = c.metric_name.split()[0]
    table = Table(title=f"{c.run}: export variants, {c.threads} thread(s), latency p50/p95 ms", title_justify="left")
    for col in ("variant", "KB", "vs eager", "gzip KB", "batch 1", "batch 32", metric, "Δ pt", "zeros", "note"):
        table.add_column(col, justify="left" if col in ("variant", "note") else "right", no_wrap=col != "note")

    def f(v, fmt):
        return "" if v is None else format(v, fmt)

    for r in c.rows:
        ratio = f"{r.bytes / base.bytes:.2f}x" if r.bytes and base.bytes else ""
        delta = f"{(r.metric - base.metric) * 100:+.1f}" if r.metric is not None and base.metric is not None else ""
        b1 = f"{r.p50_b1:.3f}/{r.p95_b1:.3f}" if r.p50_b1 is not None else ""
        b32 = f"{r.p50_b32:.3f}/{r.p95_b32:.3f}" if r.p50_b32 is not None else ""
        kb = f(r.bytes and r.bytes / 1024, ".1f")
        gz = f(r.gzip_bytes and r.gzip_bytes / 1024, ".1f")
        table.add_row(r.variant, kb, ratio, gz, b1, b32, f(r.metric, ".4f"), delta, f(r.sparsity, ".0%"), r.note)
    console(min_width=130).print(table)
