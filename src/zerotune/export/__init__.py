"""Export: TorchScript and ONNX files checked against PyTorch, int8 quantization, pruning, comparison.

    export_run(run_dir, ExportOptions(format="onnx", int8="dynamic"))  -> file + sidecar
    compare_run(run_dir)                                                -> size/latency/accuracy table
"""

from .api import ExportResult, export_run
from .build import Bounds, ExportOptions
from .compare import Comparison, compare_run, default_variants, print_comparison
from .prepare import prepare_for_export
from .sidecar import read_sidecar, sidecar_path

__all__ = ["Bounds", "Comparison", "ExportOptions", "ExportResult", "compare_run", "default_variants", "export_run",
           "prepare_for_export", "print_comparison", "read_sidecar", "sidecar_path"]
