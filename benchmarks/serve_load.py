"""Server throughput and latency with and without micro-batching, side by side.

    python benchmarks/serve_load.py RUN [--clients 32] [--requests 100] [--backend torch]

Starts `python -m zerotune.serve RUN` twice in its own process (batching on, then off), sends the
same fixed, bounded load from N concurrent keep-alive clients on loopback, and prints throughput,
p50/p99 latency, errors and the batching/no-batching throughput ratio. Targets: ratio >= 2 at 32
clients, p99 under 50 ms, zero errors. Each payload is one raw test example of the run's data.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from zerotune.data import build_data
from zerotune.runload.load import read_run_config
from zerotune.serve.loadgen import run_load


def raw_test_examples(run: str, n: int) -> list[dict]:
    """One-example payloads in raw units: the run's test inputs with the normalisation undone."""
    data = build_data(read_run_config(run).data)
    x, meta = data.test.x[:n], data.meta
    if meta.x_mean is not None:
        import torch

        shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
        x = x * torch.tensor(meta.x_std).reshape(shape) + torch.tensor(meta.x_mean).reshape(shape)
    return [{"inputs": row.tolist()} for row in x]


def start_server(run: str, extra: list[str]) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "zerotune.serve", run, "--port", "0", "--log-level", "warning", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    m = re.search(r"http://[\d.]+:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"server did not start: {line}{proc.stdout.read()}")
    url = f"http://127.0.0.1:{m.group(1)}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not answer /health")


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=100, help="requests per client")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--threads", type=int, default=1, help="backend CPU threads in the server")
    p.add_argument("--max-wait-ms", type=float, default=1.0)
    p.add_argument("--json", help="also write the results to this file")
    a = p.parse_args()

    payloads = raw_test_examples(a.run, 64)
    common = ["--backend", a.backend, "--threads", str(a.threads), "--max-wait-ms", str(a.max_wait_ms)]
    results = {}
    for name, extra in (("batching", []), ("no batching", ["--no-batching"])):
        proc, url = start_server(a.run, common + extra)
        try:
            run_load(url + "/predict", payloads, clients=a.clients, requests_per_client=5)  # warm-up
            results[name] = run_load(url + "/predict", payloads, clients=a.clients, requests_per_client=a.requests)
        finally:
            stop_server(proc)

    print(f"run {a.run}, backend {a.backend} ({a.threads} thread), {a.clients} clients x {a.requests} requests, "
          f"1 example per request, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    print(f"uvicorn {http} + {loop}; batching: max batch 64, max wait {a.max_wait_ms} ms")
    print(f"{'server':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results.items():
        print(f"{name:<12} {r.throughput:>8.0f} {r.percentile(50):>8.2f} {r.percentile(99):>8.2f} {r.errors:>7}")
    on, off = results["batching"], results["no batching"]
    ratio = on.throughput / off.throughput if off.throughput else float("inf")
    print(f"throughput ratio batching / no batching: {ratio:.2f}x (target >= 2x)")
    print(f"p99 with batching: {on.percentile(99):.2f} ms (target < 50 ms); "
          f"errors: {on.errors + off.errors} (target 0)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({k: {"throughput": r.throughput, "p50_ms": r.percentile(50), "p99_ms": r.percentile(99),
                           "errors": r.errors, "statuses": r.statuses} for k, r in results.items()}, f, indent=2)


if __name__ == "__main__":
    main()
