"""The `zerotune serve` subcommand: flags -> ServeOptions -> `serve`.

`cli.main` calls ``add_parser(subparsers)`` and then ``args.func(args)``, turning a UserError
into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import os

from .common import run_subcommand
from .lazyparse import defer_arguments

TOKEN_ENV = "ZEROTUNE_SERVE_TOKEN"


def cmd_serve(args) -> int:
    from ..export.runtime import require

    require("fastapi", "uvicorn", extra="serve")
    from ..serve.app import ServeOptions
    from ..serve.server import serve

    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV) or None
    options = ServeOptions(token=token, max_body_bytes=int(args.max_body_kb * 1024), max_examples=args.max_examples,
                           batching=not args.no_batching, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
    serve(args.target, backend=args.backend, host=args.host, port=args.port, checkpoint=args.checkpoint,
          threads=args.threads, options=options, shutdown_timeout=args.shutdown_timeout, log_level=args.log_level)
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `serve` on the main CLI's subparsers."""
    p = subparsers.add_parser(
        "serve", help="serve a run or an exported model over HTTP (POST /predict, /health, /metadata, /docs)",
        description="Serve a model over HTTP with FastAPI and uvicorn. POST /predict takes raw inputs as JSON "
                    '({"inputs": one example or a batch}); the server applies the run\'s normalisation and '
                    "answers classes, labels and probabilities. Concurrent requests are micro-batched. A language "
                    "model (a GPT run, or a local Hugging Face causal-LM directory) gets OpenAI's API instead: "
                    "POST /v1/completions and /v1/chat/completions (stream: true for server-sent events), GET "
                    "/v1/models; concurrent requests share each decode step.")
    defer_arguments(p, _add_arguments)
    return p


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from ..serve.model import BACKENDS

    p.add_argument("target", help="run directory, an exported .onnx / .pt file with its .json sidecar, or a local "
                                  "Hugging Face causal-LM directory")
    p.add_argument("--backend", default="auto", choices=BACKENDS,
                   help="auto: PyTorch for runs and .pt, onnxruntime for .onnx; onnx on a run exports it in memory")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port; 0 picks a free one (default: 8000)")
    p.add_argument("--token", help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV} if set)")
    p.add_argument("--max-body-kb", type=float, default=1024, help="largest request body in KB (default: 1024)")
    p.add_argument("--max-examples", type=int, default=1024, help="most examples per request (default: 1024)")
    p.add_argument("--no-batching", action="store_true", help="one model call per request")
    p.add_argument("--max-batch", type=int, default=64, help="most examples per batched model call (default: 64)")
    p.add_argument("--max-wait-ms", type=float, default=None,
                   help="how long a request may wait for others to share its model call (default: 1; "
                        "20 for a language model, whose batch decodes together)")
    p.add_argument("--threads", type=int, help="CPU threads for the backend")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--shutdown-timeout", type=float, default=10,
                   help="seconds requests in flight get to finish on shutdown (default: 10)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)


def main(argv: list[str] | None = None) -> int:
    """``python -m zerotune.serve ...``: the same as ``zerotune serve ...``."""
    return run_subcommand("serve", add_parser, argv)
