"""Serve: HTTP inference with FastAPI and uvicorn, with micro-batching, on PyTorch or onnxruntime.

    serve("runs/x")                                  # blocking, like `zerotune serve runs/x`
    app = create_app(load_served_model("runs/x/export/model.onnx"))
"""

from .app import ServeOptions, create_app
from .batcher import MicroBatcher
from .loadgen import LoadResult, run_load
from .model import ServedModel, load_served_model
from .server import running_server, serve

__all__ = ["LoadResult", "MicroBatcher", "ServeOptions", "ServedModel", "create_app", "load_served_model",
           "run_load", "running_server", "serve"]
