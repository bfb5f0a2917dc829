"""Int8 file size and accuracy against float32, with both quantizers, for one run.

    zerotune train recipes/digits_mlp.toml --runs-dir /tmp/ship --name mlp
    python benchmarks/quantize_size.py /tmp/ship/mlp

Exports the run in memory as float32 and as dynamic and static int8, with onnxruntime's quantizer
(ONNX files) and PyTorch's (TorchScript files), then prints each file's size, its ratio to the
float32 file of the same format, and test accuracy with the drop in points. Targets for a
Linear-heavy model: int8 file at most 0.3x the float32 size, accuracy drop at most 0.5 point.
"""

from __future__ import annotations

import argparse

import numpy as np

from zerotune.export.build import ExportContext, ExportOptions, build_export
from zerotune.export.inputs import load_data
from zerotune.export.parity import outputs
from zerotune.runload.load import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    a = p.parse_args()

    run = load_run(a.run)
    data = load_data(run)
    if data is None or run.meta.task != "classification":
        raise SystemExit("needs a classification run whose data can be rebuilt")
    ctx = ExportContext.create(run, data)
    x, y = data.test.x.numpy(), data.test.y.numpy()
    n_params = sum(p.numel() for p in ctx.model.parameters())
    linear = sum(m.weight.numel() for m in ctx.model.modules() if m.__class__.__name__ == "Linear")
    print(f"run {a.run} ({run.config.model.name}, {n_params} parameters, {linear / n_params:.0%} in Linear weights), "
          f"test split n={len(y)}")
    print(f"{'file':<26} {'quantizer':<12} {'bytes':>9} {'vs fp32':>8} {'accuracy':>9} {'drop pt':>8}")
    for fmt in ("onnx", "torchscript"):
        base = None
        for int8 in (None, "dynamic", "static"):
            b = build_export(ctx, ExportOptions(fmt, int8=int8))
            acc = float((outputs(b.runner, x).argmax(1) == y).mean())
            base = base or (len(b.data), acc)
            print(f"{b.options.label:<26} {b.options.quantizer or '-':<12} {len(b.data):>9} "
                  f"{len(b.data) / base[0]:>7.3f}x {acc:>9.4f} {100 * (base[1] - acc):>8.2f}")
    print("targets (dynamic int8, Linear-heavy model): size <= 0.300x, drop <= 0.50 pt")


if __name__ == "__main__":
    np.set_printoptions(precision=4)
    main()
