"""Serve: HTTP inference with FastAPI and uvicorn, with micro-batching, on PyTorch or onnxruntime.

    serve("runs/x")                                  # blocking, like `zerotune serve runs/x`
    app = create_app(load_served_model("runs/x/export/model.onnx"))

Names are imported on first use, so the CLI can register `serve` without FastAPI installed.
"""

import importlib

_EXPORTS = {
    "ServeOptions": "app", "create_app": "app", "MicroBatcher": "batcher", "LoadResult": "loadgen",
    "run_load": "loadgen", "ServedModel": "model", "load_served_model": "model", "running_server": "server",
    "serve": "server",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
