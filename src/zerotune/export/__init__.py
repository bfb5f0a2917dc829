"""Export: TorchScript and ONNX files checked against PyTorch, int8 quantization, pruning, comparison.

    export_run(run_dir, ExportOptions(format="onnx", int8="dynamic"))  -> file + sidecar
    compare_run(run_dir)                                                -> size/latency/accuracy table

Names are imported on first use, so the CLI can register `export` without loading torch.
"""

import importlib

_EXPORTS = {
    "ExportResult": "api", "export_run": "api", "Bounds": "build", "ExportOptions": "build", "Comparison": "compare",
    "compare_run": "compare", "default_variants": "compare", "print_comparison": "compare",
    "prepare_for_export": "prepare", "read_sidecar": "sidecar", "sidecar_path": "sidecar",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
